# Sourced by bin/dev and bin/test: make ./.venv with Python >= 3.11 and the project installed.
# MEDIASTORE_VENV_EXTRAS (set by the sourcing script) names the optional dependency groups of
# pyproject.toml it needs besides the server's own, e.g. "test" (bin/test) or "s3local" (bin/dev --s3).
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
    echo "==> Creating the virtual environment .venv ..."
    "$(find_python)" -m venv .venv
fi

# The stamp records which extras are installed ("base" alone: only the server). Install (again)
# when pyproject.toml changed since, or when an extra asked for now is not installed yet; what was
# installed before stays installed.
stamp=.venv/.mediastore-installed
installed=""
if [ -f "$stamp" ]; then
    installed=$(tr -s ' \n' ' ' <"$stamp")
fi
wanted=" base $installed ${MEDIASTORE_VENV_EXTRAS:-} "
extras=""
missing=""
for extra in $wanted; do
    case " $extras " in *" $extra "*) continue ;; esac
    extras="$extras $extra"
    case " $installed " in *" $extra "*) ;; *) missing="$missing $extra" ;; esac
done
extras=${extras# }
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$missing" ]; then
    optional=$(echo "$extras" | tr ' ' '\n' | grep -vx base | paste -sd, - || true)
    spec="."
    [ -z "$optional" ] || spec=".[$optional]"
    echo "==> Installing mediastore ($spec) into .venv: the first time takes a minute or two;"
    echo "    pip lists each package as it goes."
    echo "--> upgrading pip"
    .venv/bin/python -m pip install --quiet --upgrade pip
    echo "--> installing $spec"
    .venv/bin/python -m pip install --progress-bar on -e "$spec"
    echo "$extras" >"$stamp"
    echo "==> Installed mediastore ($spec)."
fi
