# Sourced by the other scripts: make .venv in the checkout and install chunkwise into
# it, with the extras named in $1 (e.g. "[dev]"). Needs only python3 3.10+.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
fi
# The GUI tests run a real napari viewer on Xvfb with Mesa's software OpenGL.
if [ "${CHUNKWISE_GUI_DEPS:-0}" = 1 ] && ! command -v Xvfb >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends xvfb xauth libgl1-mesa-dri \
        libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
        libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
        libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 \
        fonts-dejavu-core
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${1:-}"
