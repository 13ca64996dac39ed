"""Screenshots for the README, made by driving a real napari viewer.

Run under a display, or headless with ``xvfb-run -a python docs/make_screenshots.py``.
Writes docs/images/widget.png (the widget with a live preview on the sample),
compare_sample.png, and compare_heart.png when ../shared/data/hoa_heart.zarr exists.
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from chunkwise._napari._main import dock_widget, load, run_and_compare

IMAGES = Path(__file__).resolve().parent / "images"
HEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "hoa_heart.zarr"


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


def main() -> None:
    """Write every screenshot."""
    IMAGES.mkdir(exist_ok=True)
    widget_with_preview()
    compare(None, "compare_sample.png", 2.0)
    if HEART.exists():
        compare(str(HEART), "compare_heart.png", 2.0)
    else:
        print(f"skipped the heart: {HEART} is absent")


if __name__ == "__main__":
    main()
