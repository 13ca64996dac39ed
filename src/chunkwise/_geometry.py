"""Boxes, chunk grids and the split of out-of-volume boxes into in-volume pieces.

Pure functions and values, no I/O. A `Box` is a half-open region ``[start, stop)`` per
axis. Boxes may extend outside a volume only where an operation wraps around the
volume (scipy's ``wrap`` modes); `wrapped_pieces` maps such a box back inside.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "Box",
    "block_box",
    "ceil_div",
    "chunk_boxes",
    "spatial_axes",
    "wrapped_pieces",
]


def ceil_div(a: int, b: int) -> int:
    """Return ``ceil(a / b)`` for integers."""
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Box:
    """A half-open box ``[start, stop)`` in index space."""

    start: tuple[int, ...]
    stop: tuple[int, ...]

    @classmethod
    def full(cls, shape: Sequence[int]) -> Box:
        """Return the box covering an array of ``shape``."""
        return cls((0,) * len(shape), tuple(int(n) for n in shape))

    @property
    def shape(self) -> tuple[int, ...]:
        """Extent of the box along each axis."""
        return tuple(b - a for a, b in zip(self.start, self.stop, strict=True))

    @property
    def size(self) -> int:
        """Number of elements in the box."""
        return math.prod(self.shape)

    @property
    def slices(self) -> tuple[slice, ...]:
        """The box as a tuple of slices, for indexing the array it lives in."""
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))

    def relative_to(self, outer: Box) -> tuple[slice, ...]:
        """Slices that cut this box out of an array that covers ``outer``."""
        return tuple(
            slice(a - o, b - o)
            for a, b, o in zip(self.start, self.stop, outer.start, strict=True)
        )

    def grow(self, halo: Sequence[int]) -> Box:
        """Return the box widened by ``halo`` on both sides of each axis."""
        return Box(
            tuple(a - h for a, h in zip(self.start, halo, strict=True)),
            tuple(b + h for b, h in zip(self.stop, halo, strict=True)),
        )

    def intersect(self, other: Box) -> Box | None:
        """Return the overlap of two boxes, or None if they do not overlap."""
        start = tuple(map(max, self.start, other.start))
        stop = tuple(map(min, self.stop, other.stop))
        if any(a >= b for a, b in zip(start, stop, strict=True)):
            return None
        return Box(start, stop)

    def contains(self, other: Box) -> bool:
        """Whether ``other`` lies inside this box."""
        return all(
            a <= c and d <= b
            for a, b, c, d in zip(
                self.start, self.stop, other.start, other.stop, strict=True
            )
        )

    def clip(self, shape: Sequence[int], *, keep: Sequence[int] = ()) -> Box:
        """Return the part of the box inside an array of ``shape``.

        Axes in ``keep`` are left as they are: periodic axes, whose outside
        `wrapped_pieces` maps back inside.
        """
        return Box(
            tuple(a if i in keep else max(a, 0) for i, a in enumerate(self.start)),
            tuple(
                b if i in keep else min(b, n)
                for i, (b, n) in enumerate(zip(self.stop, shape, strict=True))
            ),
        )

    def to_json(self) -> list[list[int]]:
        """Return ``[[start...], [stop...]]``, for records and provenance."""
        return [list(self.start), list(self.stop)]


def spatial_axes(ndim: int) -> tuple[int, ...]:
    """Return the spatial axes of an ``ndim``-dimensional array: the last 3 (or 2)."""
    return tuple(range(max(ndim - 3, 0), ndim))


def chunk_boxes(
    box: Box, chunks: Sequence[int], shape: Sequence[int]
) -> Iterator[tuple[tuple[int, ...], Box]]:
    """Yield ``(chunk_index, chunk_box)`` for each chunk of a grid that ``box`` touches.

    Chunk boxes are clipped to ``shape``, the extent of the array.
    """
    ranges = [
        range(a // c, ceil_div(b, c))
        for a, b, c in zip(box.start, box.stop, chunks, strict=True)
    ]
    for index in itertools.product(*ranges):
        start = tuple(i * c for i, c in zip(index, chunks, strict=True))
        stop = tuple(
            min(s + c, n) for s, c, n in zip(start, chunks, shape, strict=True)
        )
        yield index, Box(start, stop)


def _axis_pieces(start: int, stop: int, n: int) -> list[tuple[int, int, int]]:
    """Split ``[start, stop)`` on a periodic axis of length ``n`` into in-range runs.

    Returns ``(source_start, source_stop, offset)`` triples, where ``offset`` is the
    position of the run inside ``[start, stop)``.
    """
    pieces = []
    position = start
    while position < stop:
        source = position % n
        length = min(n - source, stop - position)
        pieces.append((source, source + length, position - start))
        position += length
    return pieces


def wrapped_pieces(box: Box, shape: Sequence[int]) -> Iterator[tuple[Box, Box]]:
    """Split a box that may leave the volume into pieces inside it (periodic axes).

    Yields ``(source_box, target_box)``: ``source_box`` lies inside ``shape`` and its
    data goes to ``target_box``, given relative to ``box.start``. A box inside the
    volume yields itself once.
    """
    per_axis = [
        _axis_pieces(a, b, n)
        for a, b, n in zip(box.start, box.stop, shape, strict=True)
    ]
    for combo in itertools.product(*per_axis):
        source = Box(tuple(p[0] for p in combo), tuple(p[1] for p in combo))
        offset = tuple(p[2] for p in combo)
        target = Box(
            offset, tuple(o + s for o, s in zip(offset, source.shape, strict=True))
        )
        yield source, target


def block_box(index: int, shape: Sequence[int], block_shape: Sequence[int]) -> Box:
    """The output box of block ``index`` (C order over the block grid)."""
    grid = tuple(ceil_div(n, b) for n, b in zip(shape, block_shape, strict=True))
    position = np.unravel_index(index, grid)
    start = tuple(int(p) * b for p, b in zip(position, block_shape, strict=True))
    stop = tuple(
        min(s + b, n) for s, b, n in zip(start, block_shape, shape, strict=True)
    )
    return Box(start, stop)
