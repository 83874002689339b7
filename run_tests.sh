#!/usr/bin/env bash
# Run the test suite. Creates .venv on first use. Tests against OpenSSH's sshd run when
# sshd is installed and this runs as root with the test user (.ci/setup_sshd_user.sh);
# otherwise they are skipped with the reason (CI sets QC_REQUIRE_SSHD=1 to make that a failure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/ensure_venv.sh
ensure_venv "$PWD/requirements-dev.txt"
exec .venv/bin/python -m pytest "$@"
