#!/usr/bin/env bash
# The checks pyproject.toml configures: ruff (lint and format) over the whole tree, the code
# blocks in docs/ included, and mypy --strict on src/. CI runs this before the tests; any
# finding fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure_venv.sh
ensure_venv "$PWD/requirements-dev.txt"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
