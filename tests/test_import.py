"""The engine imports no GUI toolkit: only chunkwise._napari may."""

from __future__ import annotations

import json
import subprocess
import sys

GUI_MODULES = ("qtpy", "napari", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6")


def test_import_chunkwise_loads_no_gui_toolkit():
    code = (
        "import json, sys\n"
        "import chunkwise, chunkwise.ops, chunkwise.cli\n"
        f"print(json.dumps(sorted(m for m in {GUI_MODULES!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


def test_import_chunkwise_leaves_scipy_ndimage_until_a_filter_runs():
    # scipy.ndimage adds ~20 MB to every process, and pointwise or resampling runs
    # never need it.
    code = (
        "import sys\n"
        "import chunkwise, numpy as np\n"
        "from chunkwise import ops\n"
        "ops.downsample(2)(np.ones((4, 4, 4)))\n"
        "print('scipy.ndimage' in sys.modules)\n"
        "ops.gaussian(1)(np.ones((4, 4, 4)))\n"
        "print('scipy.ndimage' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "True"]


def test_public_names():
    import chunkwise

    assert set(chunkwise.__all__) <= set(dir(chunkwise))
    assert {"process", "iter_process", "plan", "compute_region", "ops"} <= set(
        chunkwise.__all__
    )
