"""Live preview: the operation on the part of the plane in view, off the main thread.

A preview costs what the screen shows: the field of view on the displayed plane, at
most `PREVIEW_PIXELS` output pixels (the centre of a larger view). It is computed
tile by tile with `chunkwise.iter_region`. A new request cancels the one under way,
which stops within a tile, and starts at once: a new view never waits for an old one.
The layer only ever shows finished values, so wherever it lies they are exact.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

import chunkwise
from chunkwise._napari._insert import insert_in_turns
from chunkwise._napari._layers import (
    OutputGeometry,
    ViewRegion,
    data_limits,
    is_labels_result,
    layer_source,
    output_geometry,
    same_values,
    view_region,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import napari

    from chunkwise import ops

__all__ = ["NAME", "PREVIEW_PIXELS", "PlanePreview"]

NAME = "chunkwise preview"

#: Most output pixels a preview computes: 2048 x 2048, about a screen's worth. A
#: Gaussian preview of that size takes well under a second on 2 cores
#: (benchmarks/results/preview.md).
PREVIEW_PIXELS = 2048 * 2048

#: Decoded input chunks kept between previews. A full-size preview of a 64**3-chunked
#: 8-bit volume reads 34 x 34 chunks (289 MiB, whole 64-plane chunks for a plane):
#: kept, the next plane, a pan or a parameter edit decodes none of them again.
PREVIEW_CACHE_BYTES = 384 * 2**20

#: A preview still computing after this many seconds shows its finished rows of
#: tiles (a box around the centre of the view) as they come, at most every
#: `PROGRESSIVE_INTERVAL` seconds. Quicker previews appear once, whole. The very
#: first preview shows its first finished tile at once, so that napari builds the
#: layer (0.3-0.9 s on 2 busy cores) while the other tiles compute.
PROGRESSIVE_SECONDS = 0.3
PROGRESSIVE_INTERVAL = 0.5


@dataclass(eq=False)
class _Job:
    """One requested preview: what, where, and the tiles that have come back."""

    layer: Image | Labels
    op: ops.Operation
    geometry: OutputGeometry
    view: ViewRegion
    cancel: Any = field(default_factory=lambda: chunkwise.CancelToken())
    began: float = field(default_factory=time.perf_counter)
    #: When finished rows were last shown.
    shown: float = 0.0
    data: np.ndarray | None = None
    #: Contrast limits, set at the first display so that they do not jump.
    limits: tuple[float, float] | None = None
    #: The pyramid level of ``layer`` the preview reads.
    level: int = 0

    @property
    def box(self) -> chunkwise.Box:
        """The output region as a box."""
        region = self.view.region
        return chunkwise.Box(
            tuple(s.start for s in region), tuple(s.stop for s in region)
        )

    def same_input(
        self, layer: Image | Labels, op: ops.Operation, geometry: OutputGeometry
    ) -> bool:
        """Whether this job previews ``op`` on ``layer``, placed as it is now."""
        return (
            self.layer is layer
            and self.op == op
            and np.array_equal(self.geometry.scale, geometry.scale)
            and np.array_equal(self.geometry.translate, geometry.translate)
        )


class PlanePreview:
    """Keeps a preview layer showing ``op`` on the part of ``layer`` in view.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose view is followed.
    budget : int
        Most output pixels a preview computes (default `PREVIEW_PIXELS`).
    """

    def __init__(self, viewer: napari.Viewer, *, budget: int = PREVIEW_PIXELS) -> None:
        self._viewer = viewer
        self.budget = budget
        self._job: _Job | None = None
        #: The last finished job: a view inside it is cut from it, not computed.
        self._done: _Job | None = None
        #: The job and region the layer shows.
        self._on_screen: tuple[_Job, tuple[slice, ...]] | None = None
        self.layer: Image | Labels | None = None
        #: Seconds the last shown preview took, request to display.
        self.last_seconds: float | None = None

    @property
    def busy(self) -> bool:
        """Whether a preview is being computed."""
        return self._job is not None

    def request(
        self, layer: Image | Labels, op: ops.Operation, level: int = 0
    ) -> ViewRegion | None:
        """Preview ``op`` on the part of ``layer`` in view; None if none is in view.

        ``level``: the level of a pyramid to read, as a run of it would.
        Raises `chunkwise.ChunkwiseError` if ``op`` cannot apply to the layer.
        """
        geometry = output_geometry(layer, op, level)
        view = view_region(self._viewer, layer, geometry, budget=self.budget)
        if view is None:
            self._cancel()
            return None
        job = self._job
        if job is not None and job.same_input(layer, op, geometry) and job.view == view:
            return view  # already under way
        done = self._done
        if (
            done is not None
            and done.same_input(layer, op, geometry)
            and _inside(view, done)
        ):
            self._cancel()
            self._show(done, view.region)
            return view
        self._start(_Job(layer, op, geometry, view, level=level))
        return view

    def _start(self, job: _Job) -> None:
        tiles = chunkwise.iter_region(
            layer_source(job.layer, job.level),
            job.op,
            job.box,
            cancel=job.cancel,
            cache_bytes=PREVIEW_CACHE_BYTES,
        )
        self._cancel()
        self._job = job
        worker = create_worker(_each, tiles, _start_thread=False)
        worker.yielded.connect(lambda tile: self._on_tile(job, tile))
        worker.errored.connect(lambda error: self._on_error(job, error))
        worker.start()

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel.cancel()
            self._job = None

    def _on_tile(self, job: _Job, tile: chunkwise.RegionTile) -> None:
        if job is not self._job:
            return  # replaced: its last tiles land here after the cancel
        if job.layer not in self._viewer.layers:
            self._cancel()  # the input went away
            return
        if job.data is None:
            job.data = np.empty(job.box.shape, tile.data.dtype)
        job.data[tile.box.relative_to(job.box)] = tile.data
        now = time.perf_counter()
        if tile.done == tile.total:
            self._job, self._done = None, job
            self._show(job, job.view.region)
            self.last_seconds = now - job.began
        elif self.layer is None:
            # napari takes 0.3-0.9 s to build a new layer on 2 busy cores: build it
            # now, showing the first finished tile, while the others compute.
            self._show(job, tile.box.slices)
            job.shown = time.perf_counter()
        elif (
            tile.covered is not None
            and now - job.began > PROGRESSIVE_SECONDS
            and now - job.shown > PROGRESSIVE_INTERVAL
        ):
            self._show(job, tile.covered.slices)
            job.shown = time.perf_counter()

    def _on_error(self, job: _Job, error: Exception) -> None:
        if job is self._job:
            self._job = None
            show_error(f"preview failed: {error}")

    def _show(self, job: _Job, region: tuple[slice, ...]) -> None:
        """Show ``region`` (output slices inside ``job``'s) of a job's values."""
        if (job, region) == self._on_screen and self.layer in self._viewer.layers:
            return
        box = job.box
        inner = chunkwise.Box(
            tuple(s.start for s in region), tuple(s.stop for s in region)
        )
        data = job.data[inner.relative_to(box)]
        # An RGB image's colour axis, last, has no place in the world.
        ndim = len(job.geometry.scale)
        offset = np.subtract(inner.start, box.start)[:ndim] * job.geometry.scale
        translate = np.add(job.view.translate, offset)
        labels = is_labels_result(job.layer, job.op)
        rgb = {"rgb": True} if getattr(job.layer, "rgb", False) else {}
        if self.layer is not None and (
            labels != isinstance(self.layer, Labels)
            or bool(rgb) != getattr(self.layer, "rgb", False)
            or self.layer not in self._viewer.layers
        ):
            self._remove_layer()
        kwargs = {"scale": job.geometry.scale, "translate": translate}
        if not labels:
            if job.limits is None:
                job.limits = _contrast(job.layer, data)
            # As a new layer would have them: the slider spans the limits.
            kwargs["contrast_limits_range"] = kwargs["contrast_limits"] = job.limits
            if not rgb:
                # As a see-through run output shows (`LiveOutput`): a Run that takes
                # over this layer keeps its texture format and shaders.
                data = data.astype(np.float32, copy=False)
        if self.layer is None:
            kwargs.pop("contrast_limits_range", None)
            self.layer = (Labels if labels else Image)(data, name=NAME, **rgb, **kwargs)
            # Not selected, and built over a few event-loop turns: napari's
            # controls and visual for a new layer took 0.4-0.9 s on 2 busy cores,
            # which the tiles still computing need.
            insert_in_turns(self._viewer, self.layer)
        else:
            for name, value in kwargs.items():
                # Each change refreshes the layer: only what changed.
                if not np.array_equal(getattr(self.layer, name), value):
                    setattr(self.layer, name, value)
            self.layer.data = data
        self._on_screen = (job, region)

    def hand_over(
        self, accept: Callable[[Image | Labels], bool]
    ) -> Image | Labels | None:
        """Give up the preview layer, if ``accept(layer)``, to show something else.

        A layer that napari has built and drawn already costs a data swap to reuse;
        a new one costs napari's first frame of a new visual (about 55 ms with
        software OpenGL: benchmarks/results/gui.md). The preview stops, and the
        next request builds a new preview layer. Returns the layer, or None.
        """
        layer = self.layer
        if layer is None or layer not in self._viewer.layers or not accept(layer):
            return None
        self._cancel()
        self._done = None
        self.layer = None
        self._on_screen = None
        return layer

    def close(self) -> None:
        """Stop computing and remove the preview layer."""
        self._cancel()
        self._done = None
        self._remove_layer()

    def _remove_layer(self) -> None:
        if self.layer is not None and self.layer in self._viewer.layers:
            self._viewer.layers.remove(self.layer)
        self.layer = None
        self._on_screen = None


def _each(tiles: Iterator[chunkwise.RegionTile]) -> Iterator[chunkwise.RegionTile]:
    # A generator function, so that napari makes a worker that yields each tile.
    # A cancelled preview just ends: nobody waits for it.
    with contextlib.suppress(chunkwise.Cancelled):
        yield from tiles


def _inside(view: ViewRegion, job: _Job) -> bool:
    """Whether ``view``'s region lies inside ``job``'s."""
    return all(
        a.start <= b.start and b.stop <= a.stop
        for a, b in zip(job.view.region, view.region, strict=True)
    )


def _contrast(layer: Image | Labels, data: np.ndarray) -> tuple[float, float]:
    """The input's limits for values like its own, else percentiles of ``data``."""
    if same_values(layer, data):
        return tuple(layer.contrast_limits)
    # A million values or so give the percentiles; all 4 million take ~0.2 s.
    step = max(1, int(np.sqrt(data.size / 2**20)))
    return data_limits(data[..., ::step, ::step])
