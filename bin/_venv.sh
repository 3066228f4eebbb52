# Sourced by bin/dev and bin/test: make ./.venv with Python >= 3.11 and the project installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "mediastore needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv ..."
    "$(find_python)" -m venv .venv
fi
# Install (again) when pyproject.toml changed since the last install.
stamp=.venv/.mediastore-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing mediastore and its test dependencies into .venv ..."
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    touch "$stamp"
fi
