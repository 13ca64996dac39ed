"""The output layer's data while a run streams: the view is read off the main thread.

napari reads the plane on screen from ``layer.data`` on the main thread at every
refresh. For a run's output that read decodes every chunk under the plane while the
run's jobs hold the cores: 30-80 ms per refresh of a 256² plane of 64³ zstd chunks on
two cores, against 14 ms when idle. So while a run streams, the layer shows a
`LiveOutput`: the stream reads the view napari last asked for in a worker thread,
hands the copy over with `keep`, and refreshes; napari's read then returns the copy.

What is not computed yet is see-through, so the input shows under it: a
transparent live output hands napari's 2D views as float32 with NaN outside the
finished blocks, and vispy discards NaN pixels of a float texture scaled on the GPU
(vispy/visuals/image.py). Which blocks are finished comes from the run's records
(`landed`), one flag per block (per chunk on a pyramid's coarser levels), never a
mask of voxels. Other reads (values under the cursor, ``np.asarray``) and the layer
after the run get the output's own dtype and values.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._store import Ledger

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import zarr

    from chunkwise import BlockDone, Run
    from chunkwise._geometry import Box

__all__ = ["LiveOutput", "LivePyramid"]

Key = tuple[Any, ...]
#: Orders the views napari reads, across the levels of a pyramid.
_READS = itertools.count()


class LiveOutput:
    """``array`` as napari reads it, serving one view from a copy read ahead.

    Parameters
    ----------
    array : zarr.Array
        The run's output, which keeps changing until the run ends.
    empty : bool
        Nothing is written yet (a new run): reads are the fill value, without
        touching the store, until `written`. napari slices a new layer twice while
        adding it, on the main thread: 23 ms of reading chunks that do not exist.
    unit : sequence of int, optional
        Show what is not done yet as NaN (see-through) in 2D views: the shape of
        the boxes the run reports done (blocks, or a coarser level's chunks).
    done : numpy.ndarray, optional
        With ``unit``: which units are done already (a resumed run), one bool per
        unit in C order.
    """

    def __init__(
        self,
        array: zarr.Array,
        *,
        empty: bool = False,
        unit: Sequence[int] | None = None,
        done: np.ndarray | None = None,
    ) -> None:
        self.array = array
        self._fill = (
            np.broadcast_to(np.asarray(array.fill_value, array.dtype), array.shape)
            if empty
            else None
        )
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.size = array.size
        #: The last view napari read: one entry per axis, slices on the axes shown.
        self.view: Key | None = None
        #: When that view was read, in the order of all reads (see `LivePyramid`).
        self.viewed = -1
        self._kept: tuple[Key, np.ndarray] | None = None
        #: See `defer_reads`.
        self._defer: Callable[[], None] | None = None
        self._unit = None if unit is None else tuple(unit)
        self._done: np.ndarray | None = None
        if self._unit is not None:
            grid = tuple(
                math.ceil(n / u) for n, u in zip(self.shape, self._unit, strict=True)
            )
            self._done = (
                np.zeros(grid, dtype=bool)
                if done is None
                else np.array(done, dtype=bool).reshape(grid)
            )

    @classmethod
    def of_run(cls, run: Run, *, transparent: bool) -> LiveOutput:
        """The live view of ``run``'s output; see-through where not done if asked."""
        empty = run.done_at_start == 0
        if not transparent:
            return cls(run.output, empty=empty)
        done = None if empty else Ledger.of(run.output).done(len(run.plan))
        return cls(run.output, empty=empty, unit=run.plan.block_shape, done=done)

    def landed(self, record: BlockDone | Box) -> None:
        """A block (or ``box`` of whole units) is written: show it from now on."""
        box = getattr(record, "box", record)
        if self._done is not None:
            self._done[
                tuple(
                    slice(a // u, math.ceil(b / u))
                    for a, b, u in zip(box.start, box.stop, self._unit, strict=True)
                )
            ] = True

    def _unfinished(self, key: Key) -> np.ndarray | None:
        """Where view ``key`` is not done yet (None: nothing is hidden)."""
        if self._done is None:
            return None
        units: list[Any] = []
        for entry, size, unit in zip(key, self.shape, self._unit, strict=True):
            if isinstance(entry, slice):
                units.append(np.arange(*entry.indices(size)) // unit)
            else:
                units.append(range(size)[entry] // unit)
        if sum(isinstance(u, np.ndarray) and u.size > 1 for u in units) > 2:
            return None  # a 3D view: volume rendering has no rule for NaN
        fixed = tuple(slice(None) if isinstance(u, np.ndarray) else u for u in units)
        axes = np.ix_(*(u for u in units if isinstance(u, np.ndarray)))
        return ~self._done[fixed][axes]

    def _shown(self, key: Key, read: Callable[[Key], Any]) -> np.ndarray:
        """``read(key)`` as napari should draw it: NaN where not done yet.

        What is done is taken before reading: a block landing meanwhile stays
        hidden until the next read, rather than shown before it was read.
        """
        hidden = self._unfinished(key)
        data = np.asarray(read(key))
        if hidden is None:
            return data
        # float32 during the whole run, so that napari keeps one texture format.
        shown = data.astype(np.float32)
        shown[hidden] = np.nan
        return shown

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        kept = self._kept
        if kept is not None and _plain(key) and key == kept[0]:
            return kept[1]
        if not _is_view(key, self.ndim):
            return self._read(key)
        self.view = key
        self.viewed = next(_READS)
        if self._defer is not None and self._fill is None:
            stand_in = self._stand_in(key)
            if stand_in is not None:
                self._defer()  # read off the main thread; a stand-in until then
                return stand_in
        return self._shown(key, self._read)

    def _stand_in(self, key: Key) -> np.ndarray | None:
        """What napari shows of view ``key`` until it is read (None: read it now).

        The view read last if it has the shape, else all see-through if this view
        is; a view of another shape that cannot be see-through is read at once.
        """
        shape = _view_shape(key, self.shape)
        if self._kept is not None and self._kept[1].shape == shape:
            return self._kept[1]
        if self._unfinished(key) is not None:  # a see-through view
            return np.full(shape, np.nan, np.float32)
        return None

    def _read(self, key: Any) -> Any:
        if self._fill is not None:
            return self._fill[key]
        return self.array[key]

    def written(self) -> None:
        """Blocks have landed: read them from now on."""
        self._fill = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.array[...], dtype=dtype)

    def read(self, key: Key) -> tuple[Key, np.ndarray]:
        """Read ``key`` from the array (call it off the main thread)."""
        return key, self._shown(key, self.array.__getitem__)

    def keep(self, key: Key, data: np.ndarray) -> None:
        """Serve ``data`` for ``key`` from now on, until `forget`."""
        self._kept = (key, data)

    def forget(self) -> None:
        """Serve every read from the array again."""
        self._kept = None

    def defer_reads(self, ask: Callable[[], None] | None) -> None:
        """Read a new view off the main thread from now on (None: stop).

        While a run streams, a slider step read the new plane from the store on the
        main thread, decoding chunks while the jobs held both cores: 30-80 ms of
        each step (benchmarks/results/gui.md). With ``ask`` set, a view napari asks
        for that was not read yet gets the view read last, of the same shape, as a
        stand-in (what napari's own asynchronous slicing shows until the new slice
        is ready; a see-through 2D view with nothing read yet stands in as all
        see-through), and ``ask()`` is called so that the caller reads `view` in a
        thread, `keep`s it and refreshes the layer.
        """
        self._defer = ask

    @property
    def chunkwise_input(self) -> zarr.Array:
        """The output array itself, when chunkwise reads this layer as an input."""
        return self.array

    @property
    def final(self) -> Any:
        """What the layer shows once the run has ended.

        The array itself, or this view of it for a see-through output: what a
        cancelled run did not compute stays see-through, and napari keeps the float
        texture, which the next Run's view needs too (switching a layer's texture
        format rebuilds its shaders: about 15 ms of the next Run's first frame with
        software OpenGL, benchmarks/results/gui.md).
        """
        return self.array if self._done is None else self

    def shows(self, box: Box, level: int = 0) -> bool:
        """Whether ``box`` (output voxels) overlaps the view napari last read."""
        if self.view is None or level != 0:
            return False
        for entry, size, start, stop in zip(
            self.view, self.shape, box.start, box.stop, strict=True
        ):
            if isinstance(entry, slice):
                low, high, _ = entry.indices(size)
            else:
                low = range(size)[entry]
                high = low + 1
            if high <= start or low >= stop:
                return False
        return True


def _view_shape(key: Key, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of ``array[key]`` for a view ``key`` of an array of ``shape``."""
    return tuple(
        len(range(*entry.indices(size)))
        for entry, size in zip(key, shape, strict=True)
        if isinstance(entry, slice)
    )


def _plain(key: Any) -> bool:
    # Arrays in a key would make `==` elementwise; napari's views never hold them.
    return isinstance(key, tuple) and all(
        isinstance(entry, slice | int | np.integer) for entry in key
    )


def _is_view(key: Any, ndim: int) -> bool:
    # napari slices with one entry per axis, slices on the 2 or 3 axes it shows; a
    # value under the cursor is all integers and says nothing about the view.
    return (
        _plain(key)
        and len(key) == ndim
        and sum(isinstance(entry, slice) for entry in key) >= 2
    )


class LivePyramid:
    """An OME-Zarr output's levels as napari reads them while a run streams.

    One `LiveOutput` per level; napari shows one level at a time (and the coarsest
    for the thumbnail), so the stream reads ahead only the level napari read last,
    and only when a chunk of that level landed in its view: a zoomed-out view of a
    huge output refreshes as its coarse levels fill in, never reading level 0.
    """

    def __init__(
        self,
        arrays: list[zarr.Array],
        *,
        empty: bool = False,
        units: Sequence[Sequence[int] | None] | None = None,
        done: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        units = units or [None] * len(arrays)
        done = done or [None] * len(arrays)
        self.levels = [
            LiveOutput(array, empty=empty, unit=unit, done=mask)
            for array, unit, mask in zip(arrays, units, done, strict=True)
        ]
        self.ndim = arrays[0].ndim

    @classmethod
    def of_run(cls, run: Run, *, transparent: bool) -> LivePyramid:
        """The live view of ``run``'s levels; see-through where not done if asked.

        Level 0 is done by blocks, the coarser levels by chunks.
        """
        arrays = list(run.target.levels)
        empty = run.done_at_start == 0
        if not transparent:
            return cls(arrays, empty=empty)
        units = [run.plan.block_shape, *(array.chunks for array in arrays[1:])]
        done = None
        if not empty:
            counts = [len(run.plan), *(_chunk_count(array) for array in arrays[1:])]
            done = [
                Ledger.of(array).done(count)
                for array, count in zip(arrays, counts, strict=True)
            ]
        return cls(arrays, empty=empty, units=units, done=done)

    def landed(self, record: BlockDone) -> None:
        """Show the block of ``record`` and the coarser chunks built with it."""
        self.levels[0].landed(record.box)
        for level, box in record.levels:
            self.levels[level].landed(box)

    @property
    def final(self) -> list[zarr.Array]:
        """What the layer shows once the run has ended: the levels themselves."""
        return [level.array for level in self.levels]

    def _current(self) -> int | None:
        viewed = [(level.viewed, i) for i, level in enumerate(self.levels)]
        when, index = max(viewed)
        return None if when < 0 else index

    @property
    def view(self) -> tuple[int, Key] | None:
        """The level napari read last, and its view."""
        index = self._current()
        return None if index is None else (index, self.levels[index].view)

    def written(self) -> None:
        """Blocks have landed: read every level from now on."""
        for level in self.levels:
            level.written()

    def shows(self, box: Box, level: int = 0) -> bool:
        """Whether ``box`` of ``level`` overlaps the view of the level napari shows."""
        return level == self._current() and self.levels[level].shows(box)

    def read(self, view: tuple[int, Key]) -> tuple[tuple[int, Key], np.ndarray]:
        """Read ``view`` (level, key) from its array (call it off the main thread)."""
        index, key = view
        return view, self.levels[index].read(key)[1]

    def keep(self, view: tuple[int, Key], data: np.ndarray) -> None:
        """Serve ``data`` for ``view`` from now on, until `forget`."""
        index, key = view
        self.levels[index].keep(key, data)

    def forget(self) -> None:
        """Serve every read from the arrays again."""
        for level in self.levels:
            level.forget()

    def defer_reads(self, ask: Callable[[], None] | None) -> None:
        """`LiveOutput.defer_reads` for every level."""
        for level in self.levels:
            level.defer_reads(ask)


def _chunk_count(array: zarr.Array) -> int:
    return math.prod(
        math.ceil(n / c) for n, c in zip(array.shape, array.chunks, strict=True)
    )
