# Sourced by start_qc_tool.sh and run_tests.sh: make .venv in the repository root and
# install the project into it, again only when requirements or pyproject change.
# Usage: ensure_venv [extra requirement files...]
ensure_venv() {
    local repo python stamp want
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    python="$(command -v python3.11 || command -v python3)"
    if [[ ! -x "$repo/.venv/bin/python" ]]; then
        echo "==> creating $repo/.venv with $("$python" --version)"
        "$python" -m venv "$repo/.venv"
    fi
    stamp="$repo/.venv/.qc-installed"
    want="$(cat "$repo/requirements.txt" "$repo/pyproject.toml" "$@" | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "==> installing qc-tool and its dependencies into .venv"
        local reqs=(-r "$repo/requirements.txt")
        local f
        for f in "$@"; do reqs+=(-r "$f"); done
        "$repo/.venv/bin/python" -m pip install --disable-pip-version-check -q "${reqs[@]}"
        "$repo/.venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e "$repo"
        echo "$want" > "$stamp"
    fi
}
