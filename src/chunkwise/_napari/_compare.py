"""Input and output side by side: titled panels, linked contrast, the canvas filled.

napari's grid shows each visible layer in a box of its own. `SideBySide` shows the
input and the output only, each titled with its layer name, in the arrangement
(side by side or one above the other) that shows the data largest on the canvas.
Where both hold the same values (the same dtype), their contrast limits are linked:
a change on either follows on the other. Everything is put back when it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._napari._layers import same_values

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels

__all__ = ["SideBySide", "grid_shape"]


def grid(viewer: napari.Viewer) -> Any:
    """The viewer's grid (napari 0.9 moved it to the canvas model)."""
    return viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid


def grid_shape(canvas: tuple[float, float], extent: tuple[float, float]) -> tuple:
    """``(rows, columns)`` for two panels that show ``extent`` largest on ``canvas``.

    Both are (height, width): the canvas in pixels, the data's displayed extent in
    world units.

    Examples
    --------
    >>> grid_shape((1000, 1600), (256, 256))  # a wide canvas: side by side
    (1, 2)
    >>> grid_shape((1000, 700), (256, 256))  # a narrow one: one above the other
    (2, 1)
    """
    (height, width), (h, w) = canvas, extent

    def zoom(rows: int, columns: int) -> float:
        return min(height / rows / h, width / columns / w)

    return (1, 2) if zoom(1, 2) >= zoom(2, 1) else (2, 1)


class SideBySide:
    """Input and output in a grid of two titled panels, for as long as it is on."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self._viewer = viewer
        self._visibility: dict[str, bool] = {}
        self._titles: dict[str, bool] = {}
        self._grid_shape: tuple[int, int] | None = None
        self._linked: tuple[Image, Image] | None = None
        self._syncing = False

    @property
    def linked(self) -> bool:
        """Whether the contrast of the two panels is linked."""
        return self._linked is not None

    def start(self, layer: Image | Labels, output: Image | Labels) -> None:
        """Show ``layer`` and ``output`` side by side."""
        viewer = self._viewer
        self._visibility = {item.name: item.visible for item in viewer.layers}
        for item in viewer.layers:
            item.visible = item.name in (layer.name, output.name)
        for item in (layer, output):
            title = getattr(item, "name_overlay", None)  # napari >= 0.7
            if title is not None:
                self._titles[item.name] = title.visible
                title.visible = True
        if same_values(layer, output):
            output.contrast_limits_range = layer.contrast_limits_range
            output.contrast_limits = layer.contrast_limits
            self._link(layer, output)
        shown = grid(viewer)
        self._grid_shape = tuple(shown.shape)
        shown.shape = grid_shape(self._canvas_size(), _extent(viewer, layer))
        shown.enabled = True
        viewer.reset_view()

    def stop(self) -> None:
        """Put the viewer back as it was."""
        viewer = self._viewer
        self._unlink()
        shown = grid(viewer)
        shown.enabled = False
        if self._grid_shape is not None:
            shown.shape = self._grid_shape
        viewer.reset_view()
        for item in viewer.layers:
            item.visible = self._visibility.get(item.name, item.visible)
            title = getattr(item, "name_overlay", None)
            if title is not None and item.name in self._titles:
                title.visible = self._titles[item.name]
        self._titles.clear()

    def _canvas_size(self) -> tuple[float, float]:
        canvas = getattr(self._viewer, "canvas", None)
        size = getattr(canvas, "size", None)
        if size is None:  # napari < 0.9: the Qt canvas
            size = self._viewer.window._qt_viewer.canvas.size
        return (float(size[0]), float(size[1]))

    def _link(self, a: Image, b: Image) -> None:
        self._linked = (a, b)
        a.events.contrast_limits.connect(self._on_contrast)
        b.events.contrast_limits.connect(self._on_contrast)

    def _unlink(self) -> None:
        if self._linked is not None:
            for item in self._linked:
                item.events.contrast_limits.disconnect(self._on_contrast)
        self._linked = None

    def _on_contrast(self, event: Any) -> None:
        if self._syncing or self._linked is None:
            return
        source = event.source
        limits = tuple(source.contrast_limits)
        self._syncing = True
        try:
            for item in self._linked:
                if item is not source and tuple(item.contrast_limits) != limits:
                    item.contrast_limits = limits
        finally:
            self._syncing = False


def _extent(viewer: napari.Viewer, layer: Image | Labels) -> tuple[float, float]:
    """The world extent (height, width) of ``layer`` on the displayed axes."""
    world = np.asarray(layer.extent.world, dtype=float)
    size = world[1] - world[0]
    offset = viewer.dims.ndim - layer.ndim
    axes = [axis - offset for axis in viewer.dims.displayed if axis >= offset]
    height, width = (size[axis] for axis in axes[-2:])
    return (max(height, 1e-9), max(width, 1e-9))
