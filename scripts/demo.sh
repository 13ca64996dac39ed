#!/usr/bin/env bash
# The main job: install chunkwise with its napari plugin into .venv, then open napari
# with "Process volume" docked and the generated 256^3 CT-like sample loaded (or the
# Zarr path given). Without a display it explains how to get one and, with Xvfb
# (installed here when missing), runs a Gaussian headless and writes a screenshot.
set -euo pipefail
CHUNKWISE_GUI_DEPS=1 source "$(dirname "$0")/venv.sh" "[napari]"
.venv/bin/chunkwise view "$@"
