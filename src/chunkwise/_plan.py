"""Work plans: the output's layout and a lazy sequence of work blocks.

A work block is one or more whole output chunks (whole shards when sharded), so no
two jobs ever write the same chunk. Blocks are computed from their index on demand:
a plan over a million chunks holds a few tuples, not a million objects.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._geometry import Box, block_box, ceil_div, spatial_axes
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from chunkwise._source import Source
    from chunkwise.ops import Operation

__all__ = ["Block", "Plan", "make_plan"]

#: Input voxels a block reads, at most, when chosen automatically (about 160**3):
#: two jobs and their temporaries then stay within a few tens of MB, also for
#: downsampling, which reads 8 input voxels per output voxel.
TARGET_INPUT_VOXELS = 2**22

#: Automatic blocks grow only while halos make them read more than this many times
#: the input they would read without halos. Past that, a larger block saves little
#: re-computation and costs memory: median size 3 on 64**3 chunks reads 66**3
#: (1.10x) with one-chunk blocks, which ran as fast as 128**3 blocks in a quarter
#: of the memory; gaussian sigma=2 (halo 8) still grows to 128**3 blocks (1.42x).
MAX_HALO_OVERHEAD = 1.25

#: Sanity bounds that catch mistakes (upsample by 1000, chunks of 1) before
#: anything is written: an output of 2**50 voxels is a PiB of uint8, and a plan of
#: 2**31 blocks would spend days on per-block overhead alone. (2**50, not less:
#: planning a 100000**3 virtual volume is tested, and upsampling a 120**3 volume
#: by 1000 still exceeds it.)
MAX_OUTPUT_VOXELS = 2**50
MAX_BLOCKS = 2**31


@dataclass(frozen=True, slots=True)
class Block:
    """One job: an output box made of whole chunks, and the input box it reads."""

    index: int
    box: Box
    input_box: Box


@dataclass(frozen=True)
class Plan:
    """What a run will do: output layout, block grid and cost estimates."""

    op: Operation
    input_shape: tuple[int, ...]
    input_dtype: np.dtype
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    block_shape: tuple[int, ...]

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of blocks along each axis."""
        return tuple(
            ceil_div(n, b) for n, b in zip(self.shape, self.block_shape, strict=True)
        )

    def __len__(self) -> int:
        return math.prod(self.grid)

    def block(self, index: int) -> Block:
        """The block with linear (C-order) ``index``."""
        box = block_box(index, self.shape, self.block_shape)
        return Block(
            index, box, self.op.input_box(box, self.input_shape).clip(self.input_shape)
        )

    def __iter__(self) -> Iterator[Block]:
        return (self.block(i) for i in range(len(self)))

    @property
    def n_chunks(self) -> int:
        """Number of output chunks."""
        return math.prod(
            ceil_div(n, c) for n, c in zip(self.shape, self.chunks, strict=True)
        )

    @property
    def bytes_written(self) -> int:
        """Uncompressed bytes of output."""
        return math.prod(self.shape) * self.dtype.itemsize

    @functools.cached_property
    def _input_ranges(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per axis, the input range ``(start, stop)`` each block position reads.

        Every operation maps boxes axis by axis, so a block's input box is the
        product of these ranges: the plan never needs a list of blocks.
        """
        full = Box.full(self.shape)
        ranges = []
        for axis, (n, b) in enumerate(zip(self.shape, self.block_shape, strict=True)):
            axis_ranges = []
            for start in range(0, n, b):
                box = Box(
                    (*full.start[:axis], start, *full.start[axis + 1 :]),
                    (*full.stop[:axis], min(start + b, n), *full.stop[axis + 1 :]),
                )
                need = self.op.input_box(box, self.input_shape).clip(self.input_shape)
                axis_ranges.append((need.start[axis], need.stop[axis]))
            ranges.append(tuple(axis_ranges))
        return tuple(ranges)

    @property
    def bytes_read(self) -> int:
        """Uncompressed bytes of input the blocks read, halos included."""
        voxels = math.prod(sum(b - a for a, b in axis) for axis in self._input_ranges)
        return voxels * self.input_dtype.itemsize

    def still_read(
        self,
        box: Box,
        pending: Callable[[int], bool],
        rank: Callable[[int], int] | None = None,
    ) -> tuple[Box, int] | None:
        """What of input ``box`` the blocks with ``pending(index)`` read, and when.

        Returns the bounding box of their reads within ``box`` and the lowest rank
        among them (``rank(index)``, by default the index: the order blocks run
        in), or None when no pending block reads ``box``. Input ranges grow with
        the block position along each axis, so the blocks touching ``box`` are
        found by bisection.
        """
        touching = []
        for axis, (starts, stops) in enumerate(self._range_bounds):
            first = bisect.bisect_right(stops, box.start[axis])
            last = bisect.bisect_left(starts, box.stop[axis])
            touching.append(range(first, max(first, last)))
        low = list(box.stop)
        high = list(box.start)
        strides = self._grid_strides
        first_reader: int | None = None
        for position in itertools.product(*touching):
            index = sum(p * s for p, s in zip(position, strides, strict=True))
            if not pending(index):
                continue
            when = index if rank is None else rank(index)
            first_reader = when if first_reader is None else min(first_reader, when)
            for axis, p in enumerate(position):
                a, b = self._input_ranges[axis][p]
                low[axis] = min(low[axis], a)
                high[axis] = max(high[axis], b)
        keep = box.intersect(Box(tuple(low), tuple(high)))
        return None if keep is None or first_reader is None else (keep, first_reader)

    def chunks_touched(self, chunks: Sequence[int]) -> int:
        """The most input chunks (of shape ``chunks``) that one block reads from."""
        return math.prod(
            max(ceil_div(b, c) - a // c for a, b in ranges)
            for ranges, c in zip(self._input_ranges, chunks, strict=True)
        )

    def shares_input(self, chunks: Sequence[int]) -> bool:
        """Whether some input chunk (of shape ``chunks``) is read by two blocks."""
        return any(
            (b - 1) // c >= a_next // c
            for ranges, c in zip(self._input_ranges, chunks, strict=True)
            for (_, b), (a_next, _) in itertools.pairwise(ranges)
        )

    @functools.cached_property
    def _range_bounds(self) -> tuple[tuple[list[int], list[int]], ...]:
        return tuple(
            ([a for a, _ in axis], [b for _, b in axis]) for axis in self._input_ranges
        )

    @functools.cached_property
    def _grid_strides(self) -> tuple[int, ...]:
        strides = [1] * len(self.grid)
        for axis in range(len(self.grid) - 2, -1, -1):
            strides[axis] = strides[axis + 1] * self.grid[axis + 1]
        return tuple(strides)

    @property
    def peak_bytes_per_job(self) -> int:
        """Rough upper estimate of one job's working memory for its largest block."""
        box = Box.full(self.block_shape).clip(self.shape)
        need = self.op.input_box(box, self.input_shape).clip(self.input_shape)
        # The input, a float64 working copy for float-computing steps, the output.
        return (
            need.size * (self.input_dtype.itemsize + 8)
            + box.size * self.dtype.itemsize * 2
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary, recorded in provenance and checked on resume."""
        return {
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "chunks": list(self.chunks),
            "shards": None if self.shards is None else list(self.shards),
            "block_shape": list(self.block_shape),
            "blocks": len(self),
        }


def _per_axis_shape(
    name: str, value: Sequence[int], ndim: int, fill: Sequence[int]
) -> tuple[int, ...]:
    """Accept one value per axis, or one per spatial axis (others from ``fill``)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ChunkwiseError(
            f"{name} must be a sequence of whole numbers such as (64, 64, 64), "
            f"got {value!r}"
        )
    values = tuple(value)
    if not all(_is_whole(v) for v in values):
        raise ChunkwiseError(f"{name} must be positive whole numbers, got {value!r}")
    spatial = spatial_axes(ndim)
    if len(values) == len(spatial) and len(values) != ndim:
        it = iter(values)
        values = tuple(next(it) if a in spatial else fill[a] for a in range(ndim))
    if len(values) != ndim:
        raise ChunkwiseError(
            f"{name} has {len(values)} values but the output has {ndim} dimensions"
        )
    if any(int(v) != v or v < 1 for v in values):
        raise ChunkwiseError(
            f"{name} must be positive whole numbers, got {tuple(value)}"
        )
    return tuple(int(v) for v in values)


def _is_whole(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) and int(value) == value


def _covering(
    sides: Sequence[int], unit: Sequence[int], shape: Sequence[int]
) -> tuple[int, ...]:
    """``sides`` cut down to the whole ``unit``s that cover ``shape``, per axis.

    A chunk (or shard) larger than the array only costs memory: a 99999**3 chunk
    of a small volume would be allocated whole.
    """
    return tuple(
        min(s, ceil_div(n, u) * u) for s, u, n in zip(sides, unit, shape, strict=True)
    )


def _check_voxels(shape: tuple[int, ...]) -> None:
    voxels = math.prod(shape)
    if voxels > MAX_OUTPUT_VOXELS:
        raise ChunkwiseError(
            f"the output would have shape {shape}, {voxels:.3g} voxels; chunkwise "
            f"refuses more than 2**50 ({MAX_OUTPUT_VOXELS:.3g}); check the factors"
        )


def _check_blocks(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> None:
    blocks = math.prod(ceil_div(n, b) for n, b in zip(shape, block_shape, strict=True))
    if blocks > MAX_BLOCKS:
        raise ChunkwiseError(
            f"blocks of {block_shape} cut the output {shape} into {blocks:.3g} "
            f"blocks; chunkwise refuses more than 2**31 ({MAX_BLOCKS:.3g}); use "
            "larger chunks or blocks"
        )


def _default_chunks(source: Source, shape: tuple[int, ...]) -> tuple[int, ...]:
    if source.chunks is not None:
        chunks = source.chunks
    else:
        spatial = spatial_axes(len(shape))
        edge = 64 if len(spatial) == 3 else 256
        chunks = tuple(edge if a in spatial else 1 for a in range(len(shape)))
    return tuple(max(1, min(c, n)) for c, n in zip(chunks, shape, strict=True))


def _auto_block(
    shape: tuple[int, ...],
    unit: tuple[int, ...],
    n_jobs: int,
    input_voxels: Callable[[tuple[int, ...]], int],
    input_per_output: float,
) -> tuple[int, ...]:
    """Grow the block from one unit, doubling its shortest spatial side.

    Grows while halos add more than `MAX_HALO_OVERHEAD`; stops before the block
    would read more than `TARGET_INPUT_VOXELS`, or before there would be fewer than
    two blocks per job. ``input_per_output`` is what the whole volume reads per
    output voxel (8 for downsampling by 2): a block's read without halos.
    """
    block = list(unit)
    spatial = spatial_axes(len(shape))

    def count(b: Sequence[int]) -> int:
        return math.prod(ceil_div(n, s) for n, s in zip(shape, b, strict=True))

    def overhead(b: Sequence[int]) -> float:
        own = math.prod(min(s, n) for s, n in zip(b, shape, strict=True))
        return input_voxels(tuple(b)) / (own * input_per_output)

    while overhead(block) > MAX_HALO_OVERHEAD:
        growable = [a for a in spatial if block[a] < shape[a]]
        if not growable:
            break
        axis = min(growable, key=lambda a: block[a])
        trial = list(block)
        trial[axis] *= 2
        if (
            count(trial) < 2 * n_jobs
            or input_voxels(tuple(trial)) > TARGET_INPUT_VOXELS
        ):
            break
        block = trial
    return tuple(block)


def make_plan(
    source: Source,
    op: Operation,
    *,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    block: Sequence[int] | None = None,
    n_jobs: int = 1,
) -> Plan:
    """Plan ``op`` over ``source``: validate, lay out the output, size the blocks."""
    ndim = len(source.shape)
    op.check(ndim)
    op.check_shape(source.shape)
    shape = op.output_shape(source.shape)
    if 0 in shape:
        raise ChunkwiseError(f"the output would be empty (shape {shape})")
    _check_voxels(shape)
    chunks = (
        _per_axis_shape("chunks", chunks, ndim, [1] * ndim)
        if chunks is not None
        else _default_chunks(source, shape)
    )
    if shards is not None:
        shards = _per_axis_shape("shards", shards, ndim, chunks)
        if any(s % c for s, c in zip(shards, chunks, strict=True)):
            raise ChunkwiseError(
                f"shards {shards} must be multiples of chunks {chunks}"
            )
    # Cut to the volume, each staying a multiple of the next.
    chunks = _covering(chunks, [1] * ndim, shape)
    if shards is not None:
        shards = _covering(shards, chunks, shape)
    unit = shards if shards is not None else chunks
    if block is None:

        def input_voxels(trial: tuple[int, ...]) -> int:
            # An interior block: the largest read, halos on every side.
            start = tuple(
                min(t, max(n - t, 0)) for t, n in zip(trial, shape, strict=True)
            )
            box = Box(start, tuple(a + t for a, t in zip(start, trial, strict=True)))
            return op.input_box(box.clip(shape), source.shape).clip(source.shape).size

        input_per_output = math.prod(source.shape) / math.prod(shape)
        block_shape = _auto_block(shape, unit, n_jobs, input_voxels, input_per_output)
    else:
        block_shape = _per_axis_shape("block", block, ndim, unit)
        # A block may pass the volume's end (it is cut there): only what it
        # covers of the volume must be whole chunks.
        covered = _covering(block_shape, unit, shape)
        if any(b % u for b, u in zip(covered, unit, strict=True)):
            kind = "shards" if shards is not None else "chunks"
            raise ChunkwiseError(
                f"block {block_shape} must be whole {kind} {unit} along every axis"
            )
    _check_blocks(shape, block_shape)
    return Plan(
        op=op,
        input_shape=source.shape,
        input_dtype=source.dtype,
        shape=shape,
        dtype=op.output_dtype(source.dtype),
        chunks=chunks,
        shards=shards,
        block_shape=block_shape,
    )
