"""The main job: ``chunkwise view`` without a display renders headless on Xvfb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_view_without_display_explains_and_writes_a_screenshot(tmp_path):
    shot = tmp_path / "view.png"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    done = subprocess.run(
        [sys.executable, "-m", "chunkwise.cli", "view", "--screenshot", str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "No display found" in done.stdout
    assert f"wrote {shot}" in done.stdout
    picture = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert picture.shape[0] >= 600 and picture.shape[1] >= 1000
    # Input and output are both drawn: the canvas is far from one flat colour.
    assert picture.std() > 20
