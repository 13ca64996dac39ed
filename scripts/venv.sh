# Sourced by the other scripts: make .venv in the checkout and install chunkwise into
# it, with the extras named in $1 (e.g. "[dev]"). Needs only python3 3.10+.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${1:-}"
