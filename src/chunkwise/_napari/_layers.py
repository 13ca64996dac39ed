"""Where layers and outputs sit in napari's world: sources, geometry, layer kinds."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels

from chunkwise import ops

if TYPE_CHECKING:
    import napari

__all__ = [
    "OutputGeometry",
    "data_limits",
    "is_labels_result",
    "layer_source",
    "output_geometry",
    "plane_region",
    "same_values",
]


def layer_source(layer: Image | Labels) -> Any:
    """The array chunkwise reads for ``layer``: its data, or level 0 of a pyramid."""
    return layer.data[0] if layer.multiscale else layer.data


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
    """Whether ``op``'s result is labels: a mask, or labels resampled as labels."""
    if isinstance(op.steps[-1], ops.threshold):
        return True
    return isinstance(layer, Labels) and all(step.label_like for step in op.steps)


class OutputGeometry:
    """Scale and translate of ``op``'s output so it lies on ``layer`` in the world."""

    def __init__(self, layer: Image | Labels, op: ops.Operation) -> None:
        ndim = layer.ndim
        voxel = np.asarray(op.voxel_scale(ndim))
        self.scale = np.asarray(layer.scale) * voxel
        # Output voxel j is centred on input coordinate (j + 0.5) * voxel - 0.5.
        self.translate = (
            np.asarray(layer.translate) + np.asarray(layer.scale) * (voxel - 1) / 2
        )
        self.voxel = voxel
        self.shape = op.output_shape(layer_source(layer).shape)


def output_geometry(layer: Image | Labels, op: ops.Operation) -> OutputGeometry:
    """The output's place in the world (see `OutputGeometry`)."""
    return OutputGeometry(layer, op)


def plane_region(
    viewer: napari.Viewer, layer: Image | Labels, geometry: OutputGeometry
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The output region on screen: one voxel thick off the displayed axes.

    Returns the region (slices per axis) and the world translate of its first voxel.
    """
    ndim = layer.ndim
    offset = viewer.dims.ndim - ndim
    point = np.asarray(viewer.dims.point[offset:], dtype=float)
    data = (point - np.asarray(layer.translate)) / np.asarray(layer.scale)
    displayed = {axis - offset for axis in viewer.dims.displayed}
    region, translate = [], geometry.translate.copy()
    for axis in range(ndim):
        if axis in displayed:
            region.append(slice(None))
            continue
        index = math.floor((round(data[axis]) + 0.5) / geometry.voxel[axis])
        index = min(max(index, 0), geometry.shape[axis] - 1)
        region.append(slice(index, index + 1))
        translate[axis] += index * geometry.scale[axis]
    return tuple(region), translate
