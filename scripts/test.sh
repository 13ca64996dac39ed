#!/usr/bin/env bash
# Install chunkwise and everything its tests need into .venv, then lint and test.
# Works on a fresh machine with python3 (3.10+); extra arguments go to pytest.
set -euo pipefail
CHUNKWISE_GUI_DEPS=1 source "$(dirname "$0")/venv.sh" "[dev]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
