"""Where layers and outputs sit in napari's world: sources, geometry, view, kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels

from chunkwise import ops
from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._axes import axes_spatial, check_axes, fit_axes

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = [
    "OutputGeometry",
    "ViewRegion",
    "blending_steps",
    "bounding_input_region",
    "camera_of",
    "data_limits",
    "is_labels_result",
    "labels_limits",
    "layer_axes",
    "layer_operation",
    "layer_source",
    "output_geometry",
    "plane_region",
    "same_values",
    "spatial_count",
    "view_input_region",
    "view_region",
]


def layer_source(layer: Image | Labels, level: int = 0) -> Any:
    """The array chunkwise reads for ``layer``: its data, or a level of a pyramid."""
    return layer.data[level] if layer.multiscale else layer.data


def same_values(layer: Image | Labels, output: Any) -> bool:
    """Whether ``output`` can be shown with ``layer``'s contrast limits."""
    return isinstance(layer, Image) and output.dtype == layer_source(layer).dtype


def data_limits(data: np.ndarray) -> tuple[float, float]:
    """Contrast limits from the data: its 0.5 and 99.5 percentiles, NaN left out."""
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    return (low, high if high > low else low + 1.0)


def is_labels_result(layer: Image | Labels, op: ops.Operation) -> bool:
    """Whether ``op``'s result is labels: a mask, or labels kept by every step."""
    return op.labels_from(isinstance(layer, Labels))


def blending_steps(layer: Image | Labels, op: ops.Operation) -> list[str]:
    """Names of ``op``'s steps that blend label IDs, if ``layer`` is Labels.

    Empty when the result is labels (steps that keep labels, or a mask at the end).
    """
    if not isinstance(layer, Labels) or op.labels_from(True):
        return []
    return [step.name for step in op.steps if step.labels is ops.LabelEffect.DROPS]


def layer_axes(layer: Image | Labels) -> str | None:
    """The axes of ``layer``'s data as chunkwise names them, where napari says.

    An RGB(A) image has its colour last (``"yxc"``); a layer whose axis labels are
    the letters t, c, z, y, x (as from an OME-Zarr reader) has those. None: the
    engine decides (the input's OME-Zarr metadata, else space last).
    """
    if isinstance(layer, Image) and layer.rgb:
        if layer.ndim > 4:
            raise ChunkwiseError(
                f"{layer.name} is an RGB image of {layer.ndim} dimensions; chunkwise "
                "processes RGB images of 2 to 4 (time, z, y, x)"
            )
        return "tzyx"[-layer.ndim :] + "c"
    letters = "".join(str(label).lower() for label in layer.axis_labels)
    try:
        return check_axes(letters, layer_source(layer).ndim)
    except ChunkwiseError:
        return None


def spatial_count(layer: Image | Labels) -> int:
    """How many space axes ``layer``'s data has, as the engine will process it."""
    axes = layer_axes(layer)
    if axes is not None:
        return len(axes_spatial(axes))
    return len(spatial_axes(layer_source(layer).ndim))


def layer_operation(layer: Image | Labels, op: ops.Operation) -> ops.Operation:
    """``op`` on the space axes of ``layer``'s data: per colour for RGB images."""
    axes = layer_axes(layer)
    if axes is None:
        return op
    if getattr(layer, "rgb", False) and op.labels_from(False):
        raise ChunkwiseError(
            f"{op.name} of an RGB image makes one mask per colour, which napari "
            "cannot show as labels; make the image grey first"
        )
    return fit_axes(op, axes_spatial(axes), len(axes))


def labels_limits(
    viewer: napari.Viewer, layer: Labels, samples: int = 2**18
) -> tuple[float, float]:
    """Range of the label IDs on the plane in view, from at most ``samples`` voxels.

    A blend of labels (a Gaussian, a mean) stays within the IDs it blends, so this
    range shows it as it is, where limits from a first block of background would
    show 0 to 1. Reads one strided plane (of the coarsest level of a pyramid),
    never the volume.
    """
    level = len(layer.data) - 1 if layer.multiscale else 0
    region, _ = _plane(viewer, layer, output_geometry(layer, ops.copy(), level))
    size = math.prod(s.stop - s.start for s in region)
    stride = max(1, math.ceil(math.sqrt(size / samples)))
    picked = tuple(
        slice(s.start, s.stop, stride if s.stop - s.start > 1 else 1) for s in region
    )
    values = np.asarray(layer_source(layer, level)[picked])
    if values.size == 0:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    return (low, high if high > low else low + 1.0)


class OutputGeometry:
    """Scale and translate of ``op``'s output so it lies on ``layer`` in the world."""

    def __init__(
        self, layer: Image | Labels, op: ops.Operation, level: int = 0
    ) -> None:
        ndim = layer.ndim
        # A coarser level of a pyramid: its voxels are `factor` level-0 voxels,
        # centred on the windows they reduce.
        factor = (
            np.asarray(layer.downsample_factors[level], dtype=float)
            if layer.multiscale
            else np.ones(ndim)
        )
        # An RGB image's data has its colour axis past the layer's dimensions.
        data_ndim = layer_source(layer, level).ndim
        voxel = factor * np.asarray(op.voxel_scale(data_ndim)[:ndim])
        self.scale = np.asarray(layer.scale) * voxel
        # Output voxel j is centred on input coordinate (j + 0.5) * voxel - 0.5.
        self.translate = (
            np.asarray(layer.translate) + np.asarray(layer.scale) * (voxel - 1) / 2
        )
        self.voxel = voxel
        self.shape = op.output_shape(layer_source(layer, level).shape)

    def data_placement(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Scale and translation on every axis of the data, as OME-Zarr records them.

        An RGB image's colour axis, past the layer's, has unit scale at 0.
        """
        extra = len(self.shape) - len(self.scale)
        return (
            (*(float(v) for v in self.scale), *(1.0,) * extra),
            (*(float(v) for v in self.translate), *(0.0,) * extra),
        )


def output_geometry(
    layer: Image | Labels, op: ops.Operation, level: int = 0
) -> OutputGeometry:
    """The output's place in the world (see `OutputGeometry`)."""
    return OutputGeometry(layer, op, level)


def plane_region(
    viewer: napari.Viewer, layer: Image | Labels, geometry: OutputGeometry
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The output region on screen: one voxel thick off the displayed axes.

    Returns the region (slices per axis) and the world translate of its first voxel.
    """
    region, translate = _plane(viewer, layer, geometry)
    return tuple(region), translate


def _plane(
    viewer: napari.Viewer, layer: Image | Labels, geometry: OutputGeometry
) -> tuple[list[slice], np.ndarray]:
    """Slices of the displayed output plane (whole on the displayed axes), translate."""
    ndim = layer.ndim
    offset = viewer.dims.ndim - ndim
    point = np.asarray(viewer.dims.point[offset:], dtype=float)
    data = (point - np.asarray(layer.translate)) / np.asarray(layer.scale)
    displayed = set(_displayed_axes(viewer, layer))
    region, translate = [], geometry.translate.copy()
    for axis in range(ndim):
        if axis in displayed:
            region.append(slice(0, int(geometry.shape[axis])))
            continue
        index = math.floor((round(data[axis]) + 0.5) / geometry.voxel[axis])
        index = min(max(index, 0), geometry.shape[axis] - 1)
        region.append(slice(index, index + 1))
        translate[axis] += index * geometry.scale[axis]
    # An RGB image's colours lie past the layer's axes: all of them, always.
    region.extend(slice(0, int(n)) for n in geometry.shape[ndim:])
    return region, translate


def _displayed_axes(viewer: napari.Viewer, layer: Image | Labels) -> list[int]:
    """The layer's axes on screen, vertical first (napari's displayed order)."""
    offset = viewer.dims.ndim - layer.ndim
    return [axis - offset for axis in viewer.dims.displayed if axis >= offset]


@dataclass(frozen=True)
class ViewRegion:
    """What a preview computes: the output region in view, and where it lies."""

    #: Output slices per axis: the visible part of the plane, one voxel thick off it.
    region: tuple[slice, ...]
    #: World position of the region's first voxel.
    translate: tuple[float, ...]
    #: The view shows more than the budget: the region is its centre only.
    partial: bool
    #: Output pixels of the region on screen: (height, width).
    size: tuple[int, int]


def view_region(
    viewer: napari.Viewer,
    layer: Image | Labels,
    geometry: OutputGeometry,
    *,
    budget: int,
) -> ViewRegion | None:
    """The output region visible on the canvas, on the displayed plane.

    Of at most ``budget`` output pixels: a larger view gets its centre, with the
    view's proportions. None when the view shows none of the output.
    """
    region, translate = _plane(viewer, layer, geometry)
    axes = _displayed_axes(viewer, layer)
    if len(axes) != 2:
        return None
    low, high = _visible_world(viewer)
    centre = (low + high) / 2
    spans = []
    for axis, lo, hi in zip(axes, low, high, strict=True):
        span = _voxel_span(lo, hi, geometry, axis)
        if span is None:
            return None
        spans.append(span)
    extents = [b - a for a, b in spans]
    partial = math.prod(extents) > budget
    shrink = math.sqrt(budget / math.prod(extents)) if partial else 1.0
    for axis, (a, b), c in zip(axes, spans, centre, strict=True):
        length = max(1, math.floor((b - a) * shrink))
        middle = (c - geometry.translate[axis]) / geometry.scale[axis]
        start = min(max(round(middle - length / 2), a), b - length)
        region[axis] = slice(start, start + length)
        translate[axis] += start * geometry.scale[axis]
    size = tuple(region[axis].stop - region[axis].start for axis in axes)
    return ViewRegion(tuple(region), tuple(map(float, translate)), partial, size)


def view_input_region(
    viewer: napari.Viewer, layer: Image | Labels
) -> tuple[slice, ...] | None:
    """The input voxels on screen: the visible part of the displayed plane.

    One voxel thick off the displayed axes; a region run computes the output chunks
    that hold them (the current slab of chunks). None if none is visible.
    """
    geometry = output_geometry(layer, ops.copy())
    region, _ = _plane(viewer, layer, geometry)
    axes = _displayed_axes(viewer, layer)
    if len(axes) != 2:
        return None
    low, high = _visible_world(viewer)
    for axis, lo, hi in zip(axes, low, high, strict=True):
        span = _voxel_span(lo, hi, geometry, axis)
        if span is None:
            return None
        region[axis] = slice(*span)
    return tuple(region)


def bounding_input_region(
    marks: Layer, layer: Image | Labels
) -> tuple[slice, ...] | None:
    """The input voxels inside the bounding box of a Shapes or Points layer.

    Axes the marks do not have (a 2D drawing over a volume) are taken whole. None
    if the box misses the input.
    """
    if len(marks.data) == 0:
        return None
    world = np.asarray(marks.extent.world, dtype=float)
    shape = layer_source(layer).shape
    scale, translate = np.asarray(layer.scale), np.asarray(layer.translate)
    region = []
    for axis, n in enumerate(shape):
        offset = axis - (layer.ndim - world.shape[1])
        if offset < 0:
            region.append(slice(0, n))
            continue
        ends = sorted(
            (world[k, offset] - translate[axis]) / scale[axis] for k in (0, 1)
        )
        start = max(math.floor(ends[0] + 0.5), 0)
        stop = min(math.floor(ends[1] + 0.5) + 1, n)
        if start >= stop:
            return None
        region.append(slice(start, stop))
    return tuple(region)


def _voxel_span(
    low: float, high: float, geometry: OutputGeometry, axis: int
) -> tuple[int, int] | None:
    """Output voxels along ``axis`` that the world interval [low, high] touches."""
    # Output voxel j covers the world within half a voxel of its centre.
    ends = sorted(
        (w - geometry.translate[axis]) / geometry.scale[axis] for w in (low, high)
    )
    start = max(math.floor(ends[0] + 0.5), 0)
    stop = min(math.floor(ends[1] + 0.5) + 1, int(geometry.shape[axis]))
    return (start, stop) if start < stop else None


def _visible_world(viewer: napari.Viewer) -> tuple[np.ndarray, np.ndarray]:
    """World corners of the 2D view, displayed axes: (top, left), (bottom, right)."""
    camera = camera_of(viewer)
    centre = np.asarray(camera.center, dtype=float)[-2:]
    half = _viewbox_size(viewer) / camera.zoom / 2
    return centre - half, centre + half


def camera_of(viewer: napari.Viewer) -> Any:
    """The viewer's camera (napari 0.9 moved it to the scene)."""
    scene = getattr(viewer, "scene", None)
    return viewer.camera if scene is None else scene.camera


def _viewbox_size(viewer: napari.Viewer) -> np.ndarray:
    """Height and width of the view on the canvas, in screen pixels (one grid cell)."""
    canvas = getattr(viewer, "canvas", None)
    if canvas is None:  # napari < 0.9
        return np.asarray(viewer._canvas_size, dtype=float)
    return np.asarray(canvas.viewbox_size(viewer.layers), dtype=float)
