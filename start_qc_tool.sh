#!/usr/bin/env bash
# Start the QC tool. With QC_SFTP_HOST unset, a built-in demo SFTP server on 127.0.0.1
# with a generated sample site is started first, so the whole flow works in one command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/ensure_venv.sh
ensure_venv

export QC_HTTP_HOST="${QC_HTTP_HOST:-127.0.0.1}"
export QC_PORT="${QC_PORT:-8080}"
demo_pid=""
cleanup() { [[ -n "$demo_pid" ]] && kill "$demo_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [[ -z "${QC_SFTP_HOST:-}" ]]; then
    data="${QC_DEMO_DIR:-$PWD/var/demo}"
    mkdir -p "$data"
    env_file="$data/server.env"
    rm -f "$env_file"
    echo "==> QC_SFTP_HOST is not set: starting the demo SFTP server (data in $data)"
    .venv/bin/python -m qc_tool.demo --data-dir "$data" --env-file "$env_file" &
    demo_pid=$!
    for _ in $(seq 1 600); do
        [[ -s "$env_file" ]] && break
        kill -0 "$demo_pid" 2>/dev/null || { echo "the demo server failed to start" >&2; exit 1; }
        sleep 0.1
    done
    [[ -s "$env_file" ]] || { echo "the demo server did not start in 60 s" >&2; exit 1; }
    # shellcheck disable=SC1090
    source "$env_file"
    # shellcheck disable=SC1091
    source "$data/demo-login.txt"
    export QC_CACHE_DIR="${QC_CACHE_DIR:-$data/cache}"
    echo
    echo "    Open http://$QC_HTTP_HOST:$QC_PORT/ and log in as"
    echo "        username: $QC_DEMO_USER"
    echo "        password: $QC_DEMO_PASSWORD"
    echo "    or check a site from a terminal (it asks for the password):"
    echo "        .venv/bin/qc-tool scan sftp://$QC_DEMO_USER@$QC_SFTP_HOST:$QC_SFTP_PORT${QC_SITES_ROOT%/}/demo-tower --known-hosts $QC_KNOWN_HOSTS --checks"
    echo
fi

# One worker with threads, each request read in full before a thread takes it (see
# qc_tool/web/gunicorn_conf.py; for production behind TLS, docs/deployment.md).
.venv/bin/gunicorn "qc_tool:create_app()" --config python:qc_tool.web.gunicorn_conf \
    --bind "$QC_HTTP_HOST:$QC_PORT" &
web_pid=$!
trap 'kill $web_pid 2>/dev/null || true; cleanup' EXIT INT TERM
wait "$web_pid"
