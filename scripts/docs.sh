#!/usr/bin/env bash
# Build the documentation site into site/ (open site/index.html), strictly: a broken
# link or reference fails the build. Works on a fresh machine with python3 (3.10+);
# extra arguments go to `mkdocs build` (`bash scripts/docs.sh --site-dir elsewhere`).
set -euo pipefail
source "$(dirname "$0")/venv.sh" "[docs]"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict "$@"
