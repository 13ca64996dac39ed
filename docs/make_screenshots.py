"""Screenshots for the README and the docs, made by driving a real napari viewer.

Run under a display, or headless with ``xvfb-run -a python docs/make_screenshots.py``.
Writes docs/images/widget.png (the widget with a live preview on the sample),
compare_sample.png, compare_heart.png when ../shared/data/hoa_heart.zarr exists, and
gui-<step>.png: each step of the tutorial run through the widget and compared, on the
heart (or the sample without it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from chunkwise._napari._main import dock_widget, load, run_and_compare

IMAGES = Path(__file__).resolve().parent / "images"
HEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "hoa_heart.zarr"
#: The tutorial's steps (docs/tutorial.md), as typed into the widget.
EDGES = -np.ones((3, 3, 3), int)
EDGES[1, 1, 1] = 26
TUTORIAL = {
    "clip": {"lo": 60.0, "hi": 200.0},
    "downsample": {"factor": 2},
    "upsample": {"factor": 2},
    "convolve": {"kernel": json.dumps(EDGES.tolist()), "dtype": "float32"},
}


def _settle(seconds: float = 1.0) -> None:
    app = QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def _viewer(path: str | None) -> tuple[napari.Viewer, object]:
    viewer = napari.Viewer(title="chunkwise")
    viewer.window.resize(1600, 1000)
    load(viewer, path)
    return viewer, dock_widget(viewer)


def widget_with_preview() -> None:
    """The widget with a chain and its live preview on the sample."""
    viewer, widget = _viewer(None)
    step = widget.steps.steps[0]
    step.op_name.value = "unsharp_mask"
    step.fields["sigma"].value = 3.0
    step.fields["amount"].value = 2.0
    widget.steps.append_step("downsample")
    widget.preview.value = True
    _settle(3.0)
    viewer.screenshot(str(IMAGES / "widget.png"), canvas_only=False, flash=False)
    viewer.close()


def compare(path: str | None, name: str, sigma: float) -> None:
    """Input and Gaussian output side by side."""
    viewer, widget = _viewer(path)
    run_and_compare(viewer, widget, sigma)
    _settle()
    viewer.screenshot(str(IMAGES / name), canvas_only=False, flash=False)
    viewer.close()


def tutorial_step(name: str, values: dict) -> None:
    """One step of the tutorial typed into the widget, run and compared."""
    viewer, widget = _viewer(str(HEART) if HEART.exists() else None)
    step = widget.steps.steps[0]
    step.op_name.value = name
    for parameter, value in values.items():
        step.fields[parameter].value = value
    widget.run_button.clicked.emit()
    app = QApplication.instance()
    while widget.stream is not None and widget.stream.running:
        app.processEvents()
        time.sleep(0.01)
    widget.compare.value = True
    _settle()
    viewer.screenshot(str(IMAGES / f"gui-{name}.png"), canvas_only=False, flash=False)
    # Nobody is there to answer: the scratch result is not wanted after its picture.
    widget.ask = lambda title, text, buttons: (
        "Delete" if "Delete" in buttons else "Cancel"
    )
    viewer.close()


def main() -> None:
    """Write every screenshot."""
    IMAGES.mkdir(exist_ok=True)
    for name, values in TUTORIAL.items():
        tutorial_step(name, values)
    widget_with_preview()
    compare(None, "compare_sample.png", 2.0)
    if HEART.exists():
        compare(str(HEART), "compare_heart.png", 2.0)
    else:
        print(f"skipped the heart: {HEART} is absent")


if __name__ == "__main__":
    main()
