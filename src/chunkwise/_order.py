"""The order in which a run hands out its blocks: index order, or view first.

A viewer wants the blocks it shows before the others. `BlockOrder` hands out the
blocks still to do: those crossing the first of its focus boxes first, then those
crossing the next one (the field of view, then the plane it lies on), then the
rest in shells of growing distance from the last box. Within a focus box the blocks
nearest the first box's centre come first, so the view fills from its middle; within
a shell, which is out of view, index order keeps neighbours together, so their
shared halo chunks are decoded once while they are cached (ring order re-decoded
3.7 times as many input chunks with a small cache; benchmarks/results/gui.md).
`BlockOrder.prioritise` changes the focus while a run is under way: the blocks not
handed out yet follow the new one.

Nothing is listed ahead: a group is enumerated when the one before it is used up,
so a plan of a million blocks holds one shell of them at a time, never a sorted
list of all of them. Order never changes a result: each block's output depends on
the input only, and the pyramid builds a coarser chunk once its inputs are done.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chunkwise._geometry import ceil_div

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from chunkwise._geometry import Box
    from chunkwise._plan import Plan

__all__ = ["BlockOrder", "Ranking"]

#: Blocks enumerated at once in index order: a window of the grid, not all of it.
_WINDOW = 1 << 16

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Ranking:
    """When each block runs under one focus: lower `rank` first.

    Small and picklable: each task carries the ranking it was handed out under, so
    that worker processes know which blocks come after theirs (see `Plan.still_read`).
    """

    grid: tuple[int, ...]
    shape: tuple[int, ...]
    block_shape: tuple[int, ...]
    #: Per focus box, the range of block positions it crosses along each axis.
    tiers: tuple[Ranges, ...] = ()
    #: Twice the centre of the first focus box, in voxels (integers).
    centre2: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """Number of blocks of the plan."""
        return math.prod(self.grid)

    def rank(self, index: int) -> int:
        """The rank of block ``index``: its group, its distance, then its index."""
        if not self.tiers:
            return index
        position = [int(p) for p in np.unravel_index(index, self.grid)]
        stage = self._stage(position)
        if stage >= len(self.tiers):
            return stage * self._spread * self.count + index
        distance = sum(
            (2 * p * b + min(b, n - p * b) - c) ** 2
            for p, b, n, c in zip(
                position, self.block_shape, self.shape, self.centre2, strict=True
            )
        )
        return (stage * self._spread + distance) * self.count + index

    @property
    def _spread(self) -> int:
        # More than any distance: doubled coordinates differ by at most 2n per axis.
        return sum((2 * n) ** 2 for n in self.shape) + 1

    def _stage(self, position: Sequence[int]) -> int:
        for stage, ranges in enumerate(self.tiers):
            if all(a <= p < b for p, (a, b) in zip(position, ranges, strict=True)):
                return stage
        return len(self.tiers) - 1 + _chebyshev(position, self.tiers[-1])

    def groups(self) -> Iterator[np.ndarray]:
        """Block indices in groups, each sorted by rank; every block at least once.

        A block in several focus boxes comes in the group of each; the caller hands
        it out once.
        """
        if not self.tiers:
            for start in range(0, self.count, _WINDOW):
                yield np.arange(start, min(start + _WINDOW, self.count))
            return
        for ranges in self.tiers:
            yield self._sorted([ranges])
        last = self.tiers[-1]
        for d in range(1, max(self.grid) + 1):
            inner, outer = _grow(last, d - 1, self.grid), _grow(last, d, self.grid)
            if inner == outer:
                return
            yield np.sort(self._indices(_shell(inner, outer)))

    def _indices(self, boxes: Sequence[Ranges]) -> np.ndarray:
        """The blocks of grid ``boxes`` (disjoint)."""
        strides = _strides(self.grid)
        flats = []
        for ranges in boxes:
            axes = np.ix_(*(np.arange(a, b, dtype=np.int64) for a, b in ranges))
            flat = sum(p * s for p, s in zip(axes, strides, strict=True))
            flats.append(np.ravel(flat))
        return np.concatenate(flats)

    def _sorted(self, boxes: Sequence[Ranges]) -> np.ndarray:
        """The blocks of grid ``boxes`` (disjoint), nearest the centre first."""
        flat = self._indices(boxes)
        position = np.unravel_index(flat, self.grid)
        distance = sum(
            (2 * p * b + np.minimum(b, n - p * b) - c) ** 2
            for p, b, n, c in zip(
                position, self.block_shape, self.shape, self.centre2, strict=True
            )
        )
        return flat[np.lexsort((flat, distance))]


def _strides(grid: Sequence[int]) -> list[int]:
    strides = [1] * len(grid)
    for axis in range(len(grid) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * grid[axis + 1]
    return strides


def _chebyshev(position: Sequence[int], ranges: Ranges) -> int:
    """Blocks between ``position`` and the grid box ``ranges``, along the worst axis."""
    return max(
        max(a - p, p - (b - 1), 0) for p, (a, b) in zip(position, ranges, strict=True)
    )


def _grow(ranges: Ranges, d: int, grid: Sequence[int]) -> Ranges:
    return tuple(
        (max(a - d, 0), min(b + d, n)) for (a, b), n in zip(ranges, grid, strict=True)
    )


def _shell(inner: Ranges, outer: Ranges) -> list[Ranges]:
    """``outer`` less ``inner``, as disjoint boxes: one pair of slabs per axis."""
    boxes = []
    for axis in range(len(outer)):
        (a, b), (lo, hi) = inner[axis], outer[axis]
        for part in ((lo, a), (b, hi)):
            if part[0] < part[1]:
                boxes.append((*inner[:axis], part, *outer[axis + 1 :]))
    return boxes


def _tier(box: Box, block_shape: Sequence[int], grid: Sequence[int]) -> Ranges:
    return tuple(
        (min(a // s, n), min(ceil_div(b, s), n))
        for a, b, s, n in zip(box.start, box.stop, block_shape, grid, strict=True)
    )


class BlockOrder:
    """Hands out a plan's blocks, view first, and follows a changing focus.

    ``focus`` are boxes in output voxels, most wanted first (none: index order).
    `prioritise` may be called from any thread while another iterates.
    """

    def __init__(self, plan: Plan, focus: Sequence[Box] = ()) -> None:
        self._plan = plan
        self._lock = threading.Lock()
        self._ranking = self._rank(focus)

    def _rank(self, focus: Sequence[Box]) -> Ranking:
        plan = self._plan
        tiers = tuple(_tier(box, plan.block_shape, plan.grid) for box in focus)
        tiers = tuple(t for t in tiers if all(a < b for a, b in t))
        first = focus[0] if tiers else None
        return Ranking(
            plan.grid,
            plan.shape,
            plan.block_shape,
            tiers,
            ()
            if first is None
            else tuple(a + b for a, b in zip(first.start, first.stop, strict=True)),
        )

    @property
    def ranking(self) -> Ranking:
        """The order blocks are handed out in now."""
        with self._lock:
            return self._ranking

    def prioritise(self, focus: Sequence[Box]) -> None:
        """Hand out the blocks crossing ``focus`` next (none: index order)."""
        ranking = self._rank(focus)
        with self._lock:
            self._ranking = ranking

    def iter_blocks(self, todo: np.ndarray) -> Iterator[tuple[int, Ranking]]:
        """Each block where ``todo`` is true, once, with the ranking it came under.

        ``todo`` (one bool per block) is cleared as blocks are handed out.
        """
        while True:
            ranking = self.ranking
            changed = False
            for group in ranking.groups():
                for index in group[todo[group]]:
                    if self._ranking is not ranking:
                        changed = True
                        break
                    if todo[index]:
                        todo[index] = False
                        yield int(index), ranking
                if changed:
                    break
            if not changed:
                return
