#!/usr/bin/env bash
# Install chunkwise into .venv and run the main job on generated sample data:
# a Gaussian filter over a 256^3 CT-like volume, written to a scratch folder.
set -euo pipefail
source "$(dirname "$0")/venv.sh" ""
.venv/bin/chunkwise demo "$@"
