"""The main job: napari with the plugin docked and a volume loaded.

With a display it opens the viewer. Without one it says how to get one and, when
Xvfb is installed, renders headless: it runs a Gaussian filter through the widget,
shows input and output side by side, and writes a screenshot.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    import napari

    from chunkwise._napari._widget import ProcessWidget

__all__ = ["check_path", "dock_widget", "main", "run_and_compare", "window_size"]

#: The window's size where the screen has room, as (width, height).
PREFERRED_SIZE = (1600, 1000)
#: The share of the screen's free area (without task bars) that a window may take.
SCREEN_SHARE = 0.95


def window_size(available: tuple[int, int]) -> tuple[int, int]:
    """The window's (width, height): `PREFERRED_SIZE`, within a share of the screen.

    Examples
    --------
    >>> window_size((1280, 800))
    (1216, 760)
    """
    return tuple(  # type: ignore[return-value]
        min(preferred, int(free * SCREEN_SHARE))
        for preferred, free in zip(PREFERRED_SIZE, available, strict=True)
    )


def dock_widget(viewer: napari.Viewer) -> ProcessWidget:
    """Dock "Process volume" from the plugin's manifest, as the Plugins menu does."""
    _, widget = viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")
    return widget


def load(viewer: napari.Viewer, path: str | None) -> None:
    """Open ``path`` lazily with the plugin's reader, or the generated sample."""
    if path is None:
        viewer.open_sample("chunkwise", "synthetic_ct")
    else:
        viewer.open(path, plugin="chunkwise")


def run_and_compare(
    viewer: napari.Viewer, widget: ProcessWidget, sigma: float = 2.0
) -> None:
    """Run a Gaussian filter through the widget, wait for it, compare side by side."""
    from qtpy.QtWidgets import QApplication

    widget.steps.steps[0].op_name.value = "gaussian"
    widget.steps.steps[0].fields["sigma"].value = sigma
    widget.run_button.clicked.emit()
    app = QApplication.instance()
    while widget.stream is not None and widget.stream.running:
        app.processEvents()
        time.sleep(0.01)
    widget.compare.value = True
    app.processEvents()


def _has_display() -> bool:
    return sys.platform != "linux" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _render_headless(path: str | None, screenshot: Path) -> None:
    from pyvirtualdisplay import Display

    with Display(visible=False, size=(1600, 1000), color_depth=24):
        _show(path, screenshot)


def _show(path: str | None, screenshot: Path | None) -> None:
    import napari
    from qtpy.QtGui import QGuiApplication

    viewer = napari.Viewer(title="chunkwise")
    # The screen's free area (without task bars): a fixed size may not fit it.
    screen = QGuiApplication.primaryScreen().availableGeometry()
    viewer.window.resize(*window_size((screen.width(), screen.height())))
    load(viewer, path)
    widget = dock_widget(viewer)
    if screenshot is None:
        napari.run()
        return
    run_and_compare(viewer, widget)
    viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
    print(f"wrote {screenshot}")
    # Nobody is there to answer a question on closing: the demo's scratch result
    # is not wanted after its screenshot.
    widget.ask = lambda title, text, buttons: (
        "Delete" if "Delete" in buttons else "Cancel"
    )
    viewer.close()


def check_path(path: str | None) -> None:
    """Refuse, before napari starts, a path the plugin's reader cannot open."""
    if path is None:
        return
    if "://" not in path or path.startswith("file://"):
        local = Path(path.removeprefix("file://")).expanduser()
        if not local.exists():
            raise ChunkwiseError(f"cannot view {path}: no such file or directory")
    if not path.rstrip("/\\").endswith(".zarr"):
        raise ChunkwiseError(
            f"cannot view {path}: the viewer opens Zarr arrays and OME-Zarr images "
            "named *.zarr"
        )


def main(path: str | None = None, screenshot: str | None = None) -> None:
    """Open napari with the plugin docked and ``path`` (default: the sample) loaded.

    Raises
    ------
    ChunkwiseError
        If ``path`` does not exist or is not a ``.zarr`` path, or the folder of
        ``screenshot`` does not exist.
    """
    check_path(path)
    target = Path(screenshot) if screenshot else None
    if target is not None and not target.absolute().parent.is_dir():
        raise ChunkwiseError(f"cannot write {target}: its folder does not exist")
    if _has_display():
        _show(path, target)
        return
    print(
        "No display found (DISPLAY is not set): napari needs one. Run this on a "
        "desktop, over ssh -X, or under a virtual X server: "
        "xvfb-run -a chunkwise view --screenshot view.png"
    )
    from shutil import which

    if which("Xvfb") is None:
        raise SystemExit(2)
    if target is None:
        target = Path(tempfile.mkdtemp(prefix="chunkwise-view-")) / "view.png"
    print(f"Xvfb is installed: rendering headless to {target}")
    _render_headless(path, target)
