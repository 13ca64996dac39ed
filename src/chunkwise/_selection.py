"""Which blocks a run computes, and which first: regions of the input."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from chunkwise._api import _region_box as region_box
from chunkwise._geometry import Box
from chunkwise._plan import Plan
from chunkwise._source import Source
from chunkwise.errors import ChunkwiseError


def wanted_blocks(plan: Plan, source: Source, region: Any) -> np.ndarray | None:
    """Which blocks write the output over ``region`` of the input (None: all).

    ``region`` is in input voxels: a `Box`, a tuple of slices, or text such as
    ``"0:64,100:900,100:900"`` (one ``start:stop`` per axis, either end left out
    for the edge).
    """
    if region is None:
        return None
    out = _output_box(plan, source, region)
    # Blocks tile the output on a grid: those over `out` are one slice of it.
    wanted = np.zeros(plan.grid, dtype=bool)
    wanted[
        tuple(
            slice(a // b, -(-c // b))
            for a, c, b in zip(out.start, out.stop, plan.block_shape, strict=True)
        )
    ] = True
    return wanted.ravel()


def priority_boxes(plan: Plan, source: Source, priority: Any) -> list[Box]:
    """The output boxes over ``priority``: one region of the input, or a list."""
    if priority is None:
        return []
    regions = priority if isinstance(priority, list) else [priority]
    return [_output_box(plan, source, region) for region in regions]


def _output_box(plan: Plan, source: Source, region: Any) -> Box:
    """The output voxels over ``region`` of the input (see `wanted_blocks`)."""
    if isinstance(region, str):
        region = _parse_region(region, len(source.shape))
    box, _ = region_box(region, source.shape)
    voxel = plan.op.voxel_scale(len(source.shape))
    out = Box(
        tuple(
            math.floor(Fraction(a) / Fraction(v).limit_denominator(1 << 20))
            for a, v in zip(box.start, voxel, strict=True)
        ),
        tuple(
            math.ceil(Fraction(b) / Fraction(v).limit_denominator(1 << 20))
            for b, v in zip(box.stop, voxel, strict=True)
        ),
    ).clip(plan.shape)
    if any(a >= b for a, b in zip(out.start, out.stop, strict=True)):
        raise ChunkwiseError(f"the region {region} covers no output voxel")
    return out


def _parse_region(text: str, ndim: int) -> tuple[slice, ...]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != ndim:
        raise ChunkwiseError(
            f"region {text!r} has {len(parts)} ranges for an input of {ndim} axes; "
            "write one start:stop per axis, as in 0:64,0:512,0:512"
        )
    slices = []
    for part in parts:
        ends = part.split(":")
        try:
            if len(ends) != 2:
                raise ValueError
            start, stop = (int(e) if e.strip() else None for e in ends)
        except ValueError:
            raise ChunkwiseError(
                f"region range {part!r} is not start:stop with whole numbers"
            ) from None
        slices.append(slice(start, stop))
    return tuple(slices)
