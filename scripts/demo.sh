#!/usr/bin/env bash
# Install chunkwise into .venv and run the main job on generated sample data:
# a Gaussian filter over a 256^3 CT-like volume, written to a scratch folder.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
.venv/bin/chunkwise demo "$@"
