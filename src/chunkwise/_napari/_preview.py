"""Live preview: the operation on the plane in view, computed off the main thread.

Only one computation runs at a time; a request made meanwhile replaces any waiting
one, and a result that is no longer the latest request is dropped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

import chunkwise
from chunkwise._napari._layers import (
    data_limits,
    is_labels_result,
    layer_source,
    output_geometry,
    plane_region,
    same_values,
)

if TYPE_CHECKING:
    import napari

    from chunkwise import ops

__all__ = ["PlanePreview"]

NAME = "chunkwise preview"


class PlanePreview:
    """Keeps a preview layer showing ``op`` on the current plane of ``layer``."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self._viewer = viewer
        self._generation = 0
        self._busy = False
        self._waiting: tuple[Any, ...] | None = None
        self.layer: Image | Labels | None = None
        #: Seconds the last shown preview took, request to display.
        self.last_seconds: float | None = None

    def request(self, layer: Image | Labels, op: ops.Operation) -> None:
        """Ask for a preview of ``op`` on ``layer`` at the current plane."""
        self._generation += 1
        geometry = output_geometry(layer, op)
        region, translate = plane_region(self._viewer, layer, geometry)
        job = (self._generation, layer, op, region, translate, geometry)
        if self._busy:
            self._waiting = job
        else:
            self._start(job)

    def _start(self, job: tuple[Any, ...]) -> None:
        generation, layer, op, region, translate, geometry = job
        self._busy = True
        began = time.perf_counter()
        worker = create_worker(
            chunkwise.compute_region,
            layer_source(layer),
            op,
            region,
            _start_thread=False,
        )
        worker.returned.connect(
            lambda data: self._on_result(
                generation, data, layer, op, translate, geometry, began
            )
        )
        worker.errored.connect(lambda error: self._on_error(generation, error))
        worker.finished.connect(self._on_finished)
        worker.start()

    def _on_finished(self) -> None:
        self._busy = False
        if self._waiting is not None:
            job, self._waiting = self._waiting, None
            self._start(job)

    def _on_error(self, generation: int, error: Exception) -> None:
        if generation == self._generation:
            show_error(f"preview failed: {error}")

    def _on_result(
        self, generation, data, layer, op, translate, geometry, began
    ) -> None:
        import time

        if generation != self._generation:
            return  # a newer request is on its way
        labels = is_labels_result(layer, op)
        if self.layer is not None and labels != isinstance(self.layer, Labels):
            self.close()
        if self.layer is None:
            add = self._viewer.add_labels if labels else self._viewer.add_image
            self.layer = add(data, name=NAME, scale=geometry.scale, translate=translate)
        else:
            self.layer.data = data
            self.layer.scale = geometry.scale
            self.layer.translate = translate
        if not labels:
            self.layer.contrast_limits = _contrast(layer, data)
        self.last_seconds = time.perf_counter() - began

    def close(self) -> None:
        """Remove the preview layer."""
        self._generation += 1
        self._waiting = None
        if self.layer is not None and self.layer.name in self._viewer.layers:
            self._viewer.layers.remove(self.layer.name)
        self.layer = None


def _contrast(layer: Image | Labels, data: np.ndarray) -> tuple[float, float]:
    return (
        tuple(layer.contrast_limits) if same_values(layer, data) else data_limits(data)
    )
