"""Computing any output region, in tiles: `compute_region` and `iter_region`.

A region is computed in tiles, up to ``n_jobs`` at a time on threads. A tile is the
unit of work that a cancelled region still finishes: a preview that is no longer
wanted stops within one tile, and a huge region never holds more than its output and
a few tiles' inputs.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._api import _region_box, check_n_jobs
from chunkwise._geometry import Box, block_box, ceil_div
from chunkwise._source import Source, open_source, with_axes
from chunkwise.errors import Cancelled, ChunkwiseError
from chunkwise.ops._axes import fit_axes
from chunkwise.ops._base import evaluate
from chunkwise.ops._catalogue import as_operation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from chunkwise._run import CancelToken
    from chunkwise.ops import Operation

__all__ = ["TILE_VOXELS", "RegionTile", "compute_region", "iter_region"]

#: Most output voxels in one tile of a region: 512 x 512 of a plane. An abandoned
#: preview still finishes its tiles in flight, and a Gaussian (sigma=2) tile of a
#: cold 64**3-chunked input takes about 0.1 s; halos add little (528**2 read for
#: 512**2).
TILE_VOXELS = 2**18


@dataclass(frozen=True, slots=True)
class RegionTile:
    """One finished tile of `iter_region`.

    Attributes
    ----------
    box : Box
        The tile, in output coordinates.
    data : numpy.ndarray
        Its values, of shape ``box.shape`` (every axis kept).
    done, total : int
        Tiles finished so far, this one included, and tiles in the region.
    covered : Box or None
        The part of the region finished so far, as a box: tiles come row by row
        from the middle row outwards, so this is the complete rows, around the
        region's centre (the whole region with the last tile); None before the
        first row is complete.
    """

    box: Box
    data: np.ndarray
    done: int
    total: int
    covered: Box | None


def compute_region(
    source: Any,
    op: Operation,
    region: Any,
    *,
    n_jobs: int | None = None,
    cancel: CancelToken | None = None,
    tile_voxels: int = TILE_VOXELS,
    axes: str | None = None,
) -> np.ndarray:
    """Compute ``op``'s output over one region, reading only the input it needs.

    The result equals that region of `chunkwise.process`'s output. It is computed
    in tiles (see `iter_region`), so a region far larger than memory-friendly
    blocks holds only its output and the tiles in flight.

    Parameters
    ----------
    source : str, os.PathLike, zarr.Array or numpy.ndarray
        The input, as for `chunkwise.process`.
    op : Operation or str
        The operation, or its text form (``"gaussian:sigma=2"``).
    region : Box or tuple of int and slice
        Output region, indexed like numpy: integers drop their axis, so
        ``(10, slice(None), slice(None))`` gives output plane 10 as a 2D array.
    n_jobs : int, optional
        Tiles computed at once, on threads. None (default): all cores.
    cancel : CancelToken, optional
        Stops the computation between tiles when cancelled.
    tile_voxels : int
        Most output voxels per tile.
    axes : str, optional
        The input's axes, as for `chunkwise.process`.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ChunkwiseError
        If the region does not fit the output, or a parameter is invalid.
    Cancelled
        If ``cancel`` was cancelled before the last tile finished.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    >>> plane = compute_region(volume, ops.gaussian(1), (2, slice(None), slice(None)))
    >>> bool((plane == ops.gaussian(1)(volume)[2]).all())
    True
    """
    opened, op, box, after = _prepare(source, op, region, None, axes)
    tiles = _iter_tiles(
        opened,
        op,
        box,
        _tile_shape(box.shape, tile_voxels),
        check_n_jobs(n_jobs),
        cancel,
    )
    out = None
    for tile in tiles:
        if tile.total == 1:
            out = tile.data  # the region in one piece: no copy
        else:
            if out is None:
                out = np.empty(box.shape, tile.data.dtype)
            out[tile.box.relative_to(box)] = tile.data
    return out[after] if after else out


def iter_region(
    source: Any,
    op: Operation,
    region: Any,
    *,
    n_jobs: int | None = None,
    cancel: CancelToken | None = None,
    tile_voxels: int = TILE_VOXELS,
    cache_bytes: int | None = None,
    axes: str | None = None,
) -> Iterator[RegionTile]:
    """Compute ``op``'s output over one region tile by tile, yielding each tile.

    Tiles are square-ish boxes of at most ``tile_voxels`` output voxels, computed
    ``n_jobs`` at a time and yielded row by row from the middle row outwards, so
    that what is finished is always a box around the region's centre. Stopping
    early (closing the generator, or ``cancel``) abandons the work: tiles not
    started are dropped, and those in flight finish on their own threads without
    being waited for. Previews use this to follow the view.

    Parameters
    ----------
    source : str, os.PathLike, zarr.Array or numpy.ndarray
        The input, as for `chunkwise.process`.
    op : Operation or str
        The operation, or its text form.
    region : Box or tuple of int and slice
        Output region, as for `compute_region`; tiles keep every axis (an integer
        selects a one-voxel slab).
    n_jobs : int, optional
        Tiles computed at once, on threads. None (default): all cores.
    cancel : CancelToken, optional
        Stops the computation between tiles when cancelled.
    tile_voxels : int
        Most output voxels per tile (default `TILE_VOXELS`).
    cache_bytes : int, optional
        Budget, in bytes, of the cache of decoded input chunks (0 disables it;
        default 128 MiB). The same open zarr array with the same budget keeps one
        cache across calls, so that regions nearby decode no chunk twice.
    axes : str, optional
        The input's axes, as for `chunkwise.process`.

    Yields
    ------
    RegionTile
        Each finished tile, with the box that the finished tiles cover so far.

    Raises
    ------
    ChunkwiseError
        At the call, if the region does not fit the output or a parameter is
        invalid.
    Cancelled
        While iterating, once ``cancel`` is cancelled.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> volume = np.zeros((8, 1024, 1024), np.float32)
    >>> tiles = list(iter_region(volume, ops.gaussian(1), (4,), n_jobs=1))
    >>> [tile.box.shape for tile in tiles[:2]], tiles[0].covered, tiles[1].covered
    ([(1, 512, 512), (1, 512, 512)], None, Box(start=(4, 0, 0), stop=(5, 512, 1024)))
    """
    opened, op, box, _ = _prepare(source, op, region, cache_bytes, axes)
    shape = _tile_shape(box.shape, tile_voxels)
    return _iter_tiles(opened, op, box, shape, check_n_jobs(n_jobs), cancel)


def _prepare(
    source: Any, op: Any, region: Any, cache_bytes: int | None, axes: str | None
) -> tuple[Source, Operation, Box, tuple[Any, ...]]:
    """The opened input, the operation and the output box, all checked."""
    op = as_operation(op)
    opened = with_axes(open_source(source, cache_bytes=cache_bytes), axes)
    op = fit_axes(op, opened.spatial, len(opened.shape))
    op.check(len(opened.shape))
    op.check_shape(opened.shape)
    box, after = _region_box(region, op.output_shape(opened.shape))
    return opened, op, box, after


def _tile_shape(shape: tuple[int, ...], voxels: int) -> tuple[int, ...]:
    """Halve the longest side of ``shape`` until at most ``voxels`` remain.

    Near-cubic tiles read the least halo for what they compute.
    """
    if isinstance(voxels, bool) or not isinstance(voxels, numbers.Integral):
        raise ChunkwiseError(f"tile_voxels must be a whole number, got {voxels!r}")
    if voxels < 1:
        raise ChunkwiseError(f"tile_voxels must be >= 1, got {voxels}")
    tile = list(shape)
    while math.prod(tile) > voxels:
        longest = tile.index(max(tile))
        tile[longest] = ceil_div(tile[longest], 2)
    return tuple(tile)


def _iter_tiles(
    source: Source,
    op: Operation,
    box: Box,
    tile: tuple[int, ...],
    n_jobs: int,
    cancel: CancelToken | None,
) -> Iterator[RegionTile]:
    grid = tuple(ceil_div(n, t) for n, t in zip(box.shape, tile, strict=True))
    total = math.prod(grid)
    rows = _Rows(box, tile, grid)

    def compute(index: int) -> tuple[Box, np.ndarray] | None:
        if cancel is not None and cancel.cancelled:
            return None  # the consumer raises; in-flight neighbours just stop
        part = _shifted(block_box(index, box.shape, tile), box.start)
        return part, evaluate(op, source.shape, source.dtype, source.read, part)

    results = _in_order(compute, rows.order(), total, n_jobs)
    try:
        for done, result in enumerate(results, 1):
            if result is None or (cancel is not None and cancel.cancelled):
                raise Cancelled(f"cancelled after {done - 1} of {total} tiles")
            part, data = result
            yield RegionTile(part, data, done, total, rows.covered(done))
    finally:
        results.close()


class _Rows:
    """The tiles of a region, row by row from the middle row outwards.

    A row is the tiles that share a position on the first axis split in more than
    one tile. The middle first: a region that is the centre of a view fills in
    around that centre, and what is finished is always one box.
    """

    def __init__(self, box: Box, tile: tuple[int, ...], grid: tuple[int, ...]):
        self.box, self.tile = box, tile
        self.axis = next((axis for axis, n in enumerate(grid) if n > 1), 0)
        self.per_row = math.prod(grid[self.axis + 1 :])
        count = grid[self.axis]
        middle = (count - 1) // 2
        self.rows = [middle]
        for step in range(1, count):
            self.rows += [r for r in (middle + step, middle - step) if 0 <= r < count]

    def order(self) -> Iterator[int]:
        """Tile indices (C order over the grid) in the order they are computed."""
        for row in self.rows:
            yield from range(row * self.per_row, (row + 1) * self.per_row)

    def covered(self, done: int) -> Box | None:
        """The box that the first ``done`` tiles fill, or None."""
        complete = self.rows[: done // self.per_row]
        if not complete:
            return None
        axis, start, stop = self.axis, list(self.box.start), list(self.box.stop)
        start[axis] = self.box.start[axis] + min(complete) * self.tile[axis]
        stop[axis] = min(
            self.box.start[axis] + (max(complete) + 1) * self.tile[axis], stop[axis]
        )
        return Box(tuple(start), tuple(stop))


def _in_order(
    work: Callable[[int], Any], indices: Iterator[int], count: int, n_jobs: int
) -> Iterator[Any]:
    """Yield ``work(i)`` for the ``count`` ``indices``, in order, ``n_jobs`` at once.

    Closed early, it drops the calls not started and does not wait for the others.
    """
    if n_jobs == 1 or count == 1:
        yield from map(work, indices)
        return
    pool = ThreadPoolExecutor(min(n_jobs, count), thread_name_prefix="chunkwise-tile")
    ahead: deque[Any] = deque()
    try:
        for index in indices:
            ahead.append(pool.submit(work, index))
            # A bounded queue: finished tiles wait for the consumer, not memory.
            if len(ahead) > 2 * n_jobs:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _shifted(box: Box, offset: Sequence[int]) -> Box:
    return Box(
        tuple(a + o for a, o in zip(box.start, offset, strict=True)),
        tuple(b + o for b, o in zip(box.stop, offset, strict=True)),
    )
