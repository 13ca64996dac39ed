"""What the user looks at, as the regions a run computes first (view first)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from chunkwise import ops
from chunkwise._napari._layers import (
    layer_source,
    output_geometry,
    plane_region,
    view_input_region,
)

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels

__all__ = ["view_priority"]


def view_priority(
    viewer: napari.Viewer, layer: Image | Labels, level: int = 0
) -> list[tuple[slice, ...]]:
    """The field of view on the plane in view, then that plane, in input voxels.

    For `chunkwise.iter_process`'s ``priority`` and `chunkwise.Run.prioritise`, on
    ``level`` of a pyramid input. Empty in a 3D view, which shows the whole volume.
    """
    if viewer.dims.ndisplay != 2:
        return []
    plane, _ = plane_region(viewer, layer, output_geometry(layer, ops.copy()))
    view = view_input_region(viewer, layer)
    regions = [plane] if view is None else [view, plane]
    if not layer.multiscale or level == 0:
        return regions
    factors = np.asarray(layer.downsample_factors[level], dtype=float)
    shape = layer_source(layer, level).shape
    return [_coarser(region, factors, shape) for region in regions]


def _coarser(
    region: tuple[slice, ...], factors: np.ndarray, shape: tuple[int, ...]
) -> tuple[slice, ...]:
    """``region`` of level 0 in the voxels of a level ``factors`` coarser."""
    coarse = []
    for item, f, n in zip(region, factors, shape, strict=False):
        start = min(math.floor(item.start / f), n - 1)
        coarse.append(slice(start, max(math.ceil(item.stop / f), start + 1)))
    return tuple(coarse)
