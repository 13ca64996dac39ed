"""The coarser levels of an OME-Zarr output, built while level 0 is written.

A chunk of level ``l`` is the x2 reduction (`chunkwise.ops.downsample`, mean for
images, mode for labels) of a region of level ``l - 1``. It is computed as soon as
every chunk of that region is recorded as done: its inputs are final, so it is
final too, and no second pass over the volume is needed. Level ``l - 1`` is read
back from the output's files, through the same decoded-chunk cache as inputs; at
most a few chunks of each level wait in memory.

Each level keeps a ledger of its finished chunks (one empty key per chunk, after
the chunk's file), like level 0's ledger of blocks: a run killed at any moment
resumes with every level identical to an uninterrupted run's.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chunkwise._geometry import Box, chunk_boxes
from chunkwise._store import ChunkWriter, Ledger, write_box
from chunkwise.ops import downsample
from chunkwise.ops._axes import fit_axes
from chunkwise.ops._base import evaluate

if TYPE_CHECKING:
    from collections.abc import Iterable

    import zarr

    from chunkwise._output import Fence
    from chunkwise.ops import Operation

__all__ = ["InBlock", "Pyramid", "method_for"]


def _grid(array: zarr.Array) -> tuple[int, ...]:
    return tuple(
        math.ceil(n / c) for n, c in zip(array.shape, array.chunks, strict=True)
    )


def _chunk_box(array: zarr.Array, index: tuple[int, ...]) -> Box:
    start = tuple(i * c for i, c in zip(index, array.chunks, strict=True))
    stop = tuple(
        min(a + c, n) for a, c, n in zip(start, array.chunks, array.shape, strict=True)
    )
    return Box(start, stop)


def _chunk_range(array: zarr.Array, box: Box) -> tuple[slice, ...]:
    """The chunk indices of ``array`` that ``box`` touches, as slices of its grid."""
    return tuple(
        slice(a // c, math.ceil(b / c))
        for a, b, c in zip(box.start, box.stop, array.chunks, strict=True)
    )


class Pyramid:
    """Builds levels ``1..`` of ``levels`` as the chunks of the level below land.

    Call `landed` with each box of level 0 that is recorded as done (the driver
    does, after the ledger); `finish` waits for the work that is left. The work
    runs in one background thread, so chunks of one level are written by one
    writer at a time.
    """

    def __init__(
        self,
        levels: tuple[zarr.Array, ...],
        *,
        method: str,
        fence: Fence | None = None,
        nice: int = 0,
    ) -> None:
        from chunkwise._source import open_source

        self.levels = levels
        self.method = method
        self.axes = halved_axes(levels)
        self.reduce = _reduction(levels, method)
        self._fence = fence
        self._nice = nice
        self._ledgers = [Ledger.of(array) for array in levels]
        self._writers = [ChunkWriter.of(array, fence) for array in levels]
        # Level l - 1 read back through the decoded-chunk cache: a chunk is read
        # once for the (up to 2**ndim) chunks of level l that reduce it.
        self._sources = [
            open_source(array, cache_bytes=64 * 2**20) for array in levels[:-1]
        ]
        self.done = [np.zeros(_grid(array), dtype=bool) for array in levels]
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="chunkwise-pyramid"
        )
        self._pending: set[concurrent.futures.Future] = set()
        self._error: BaseException | None = None
        self._built: list[tuple[int, Box]] = []

    # --- bookkeeping ------------------------------------------------------------

    def resume(self, base_done: Iterable[Box]) -> None:
        """Start from what an earlier run recorded: level 0's done boxes, the ledgers.

        Then queue every chunk whose inputs are done but which is not.
        """
        for box in base_done:
            self.done[0][_chunk_range(self.levels[0], box)] = True
        for level in range(1, len(self.levels)):
            grid = self.done[level].shape
            for flat in np.flatnonzero(self._ledgers[level].done(math.prod(grid))):
                self.done[level][np.unravel_index(flat, grid)] = True
        for level in range(1, len(self.levels)):
            for index in zip(*np.nonzero(~self.done[level]), strict=True):
                if self._ready(level, tuple(int(i) for i in index)):
                    self._submit(level, tuple(int(i) for i in index))

    def forget(self, box: Box) -> None:
        """Level 0's ``box`` is to be computed again: so is everything above it."""
        for level in range(1, len(self.levels)):
            box = _halve(box, self.levels[level], self.axes)
            for index in _indices(self.levels[level], box):
                if self.done[level][index]:
                    self.done[level][index] = False
                with contextlib.suppress(FileNotFoundError):
                    self._ledgers[level].unmark(self._flat(level, index))

    def record(self, built: list[tuple[int, tuple[int, ...], bytes]]) -> None:
        """Record chunks a worker built inside its block (`InBlock.build`) as done.

        Call before the block itself is recorded: a run killed in between builds
        them again with the block.
        """
        boxes = []
        for level, index, written in built:
            self._ledgers[level].mark(self._flat(level, index), written)
            boxes.append((level, _chunk_box(self.levels[level], index)))
            with self._lock:
                self.done[level][index] = True
                self._built.append(boxes[-1])
        for level, box in boxes:
            self._queue_parents(level, box)

    def landed(self, box: Box) -> None:
        """Level 0's ``box`` (whole chunks) is written and recorded as done."""
        self._raise_error()
        with self._lock:
            self.done[0][_chunk_range(self.levels[0], box)] = True
        self._queue_parents(0, box)

    def finish(self) -> None:
        """Wait for the levels to be built; raise the first error a build met."""
        while True:
            with self._lock:
                pending = set(self._pending)
            if not pending:
                break
            concurrent.futures.wait(pending)
        self._raise_error()

    def close(self) -> None:
        """Stop building: drop what was not started, wait for what was."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def drain(self) -> tuple[tuple[int, Box], ...]:
        """The ``(level, box)`` of each chunk built since the last call."""
        with self._lock:
            built, self._built = tuple(self._built), []
        return built

    @property
    def complete(self) -> bool:
        """Whether every chunk of every level is done."""
        return all(bool(done.all()) for done in self.done)

    # --- internals ---------------------------------------------------------------

    def _flat(self, level: int, index: tuple[int, ...]) -> int:
        return int(np.ravel_multi_index(index, self.done[level].shape))

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _queue_parents(self, level: int, box: Box) -> None:
        if level + 1 >= len(self.levels):
            return
        parent = self.levels[level + 1]
        for index in _indices(parent, _halve(box, parent, self.axes)):
            if not self.done[level + 1][index] and self._ready(level + 1, index):
                self._submit(level + 1, index)

    def _ready(self, level: int, index: tuple[int, ...]) -> bool:
        below = self.levels[level - 1]
        need = self.reduce.input_box(_chunk_box(self.levels[level], index), below.shape)
        with self._lock:
            return bool(self.done[level - 1][_chunk_range(below, need)].all())

    def _submit(self, level: int, index: tuple[int, ...]) -> None:
        with self._lock:
            future = self._pool.submit(self._build, level, index)
            self._pending.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._error = self._error or future.exception()

    def _build(self, level: int, index: tuple[int, ...]) -> None:
        if self._error is not None:
            return
        with self._lock:
            if self.done[level][index]:
                return
            # Taken: queued twice (two children landing together) builds once.
            self.done[level][index] = True
        array = self.levels[level]
        box = _chunk_box(array, index)
        below = self._sources[level - 1]
        try:
            data = evaluate(self.reduce, below.shape, below.dtype, below.read, box)
            written = write_box(array, box, data, self._writers[level], self._fence)
            self._ledgers[level].mark(self._flat(level, index), written)
        except BaseException:
            with self._lock:
                self.done[level][index] = False
            raise
        below.release(self.reduce.input_box(box, below.shape), lambda chunk: None)
        with self._lock:
            self._built.append((level, box))
        self._queue_parents(level, box)


@dataclass(frozen=True)
class InBlock:
    """The coarser chunks a worker builds from its own block, while it holds it.

    Reducing level 0's block in memory spares reading it back: where the block
    starts on even voxels (whole chunks of an even size do) its x2 reduction is
    exact, and every chunk of the next level that lies inside the reduced box is
    final. The chunks that straddle blocks are left to `Pyramid`. Picklable, for
    worker processes.
    """

    levels: tuple[zarr.Array, ...]
    method: str
    writers: tuple[ChunkWriter | None, ...]
    fence: Fence | None = None

    @classmethod
    def of(
        cls, levels: tuple[zarr.Array, ...], method: str, fence: Fence | None = None
    ) -> InBlock:
        """The in-block builder of ``levels`` (level 0 first)."""
        writers = tuple(ChunkWriter.of(array, fence) for array in levels)
        return cls(levels, method, writers, fence)

    def build(
        self, box: Box, data: np.ndarray
    ) -> list[tuple[int, tuple[int, ...], bytes]]:
        """Write the coarser chunks inside level 0's ``box`` (holding ``data``).

        Returns ``(level, chunk index, written map)`` for each chunk written.
        """
        reduce = _reduction(self.levels, self.method)
        axes = halved_axes(self.levels)
        built = []
        for level in range(1, len(self.levels)):
            below, array = self.levels[level - 1], self.levels[level]
            if any(box.start[a] % 2 for a in axes) or any(
                box.stop[a] % 2 and box.stop[a] != below.shape[a] for a in axes
            ):
                break  # its windows would reach into other blocks
            coarse = _halve(box, array, axes)
            data = evaluate(
                reduce,
                below.shape,
                below.dtype,
                lambda need, box=box, data=data: data[need.relative_to(box)],
                coarse,
            )
            box = coarse
            for index, chunk_box in chunk_boxes(box, array.chunks, array.shape):
                if not box.contains(chunk_box):
                    continue
                part = data[chunk_box.relative_to(box)]
                written = write_box(
                    array, chunk_box, part, self.writers[level], self.fence
                )
                built.append((level, index, written))
        return built


def _halve(box: Box, parent: zarr.Array, axes: tuple[int, ...]) -> Box:
    """The box of ``parent``, the next level, that reduces ``box`` of the one below."""
    return Box(
        tuple(a // 2 if i in axes else a for i, a in enumerate(box.start)),
        tuple(math.ceil(b / 2) if i in axes else b for i, b in enumerate(box.stop)),
    ).clip(parent.shape)


def halved_axes(levels: tuple[zarr.Array, ...]) -> tuple[int, ...]:
    """The axes each level halves: the space axes, never channels or time.

    Read off the first two levels' shapes. An axis of one voxel halves to itself
    either way; such axes make up the count where fewer than 2 shrink.
    """
    first, second = levels[0].shape, levels[1].shape
    axes = [a for a, (n, m) in enumerate(zip(first, second, strict=True)) if n != m]
    ones = [a for a, n in enumerate(first) if n == 1 and a not in axes]
    while len(axes) < 2 and ones:
        axes.append(ones.pop(0))
    return tuple(sorted(axes))


def _reduction(levels: tuple[zarr.Array, ...], method: str) -> Operation:
    """The x2 reduction from one level to the next, on the halved axes only."""
    return fit_axes(downsample(2, method=method), halved_axes(levels), levels[0].ndim)


def _indices(array: zarr.Array, box: Box) -> list[tuple[int, ...]]:
    return [index for index, _ in chunk_boxes(box, array.chunks, array.shape)]


def method_for(labels: bool) -> str:
    """How levels are reduced: mode for labels and masks, mean for images."""
    return "mode" if labels else "mean"
