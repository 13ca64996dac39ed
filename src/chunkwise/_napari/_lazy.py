"""Zarr arrays as the reader's layers hold them: read through chunkwise, lazily.

napari reads the plane on screen from ``layer.data`` on its main thread at every
slider move. Through zarr that is one request per chunk in zarr's event loop: 22 s
for a 16384**2 plane of 64**3 chunks that were nearly all never written
(benchmarks/results/preview-single-scale.md). A `LazyArray` reads the same values
through `chunkwise._source.Source`: chunk files decoded directly, chunks without a
file left as the fill value (one directory listing per row of chunks tells which),
and decoded chunks kept, so the next plane inside the same chunks decodes nothing.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._chunkfiles import ChunkFiles
from chunkwise._geometry import Box
from chunkwise._keys import chunk_key
from chunkwise._napari._preview import PREVIEW_CACHE_BYTES
from chunkwise._source import open_source
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    import zarr

    from chunkwise._source import Source

__all__ = ["READ_CACHE_BYTES", "LazyArray"]

#: Decoded chunks kept for display: the preview's budget, so that both share one
#: cache (`open_source` gives an open array the same Source). It holds the 1024
#: stored 64**3 chunks under a whole plane of the issue's volume (256 MiB): the next
#: plane inside them decodes nothing (benchmarks/results/preview-single-scale.md).
READ_CACHE_BYTES = PREVIEW_CACHE_BYTES

#: Stored chunks read to estimate contrast limits (about 4 MiB of 8-bit 64**3).
SAMPLE_CHUNKS = 16

#: Per axis: chunk index, positions in the result, positions in the chunk.
Run = tuple[int, slice, slice]


class LazyArray:
    """A zarr array, or a part of it, that reads only when indexed with an integer.

    Keys of integers and slices (steps too, negative ones included) and an
    Ellipsis read like numpy's: a key with an integer reads at once, a key of slices
    alone returns a lazy view, as a dask array does (napari cuts a multiscale level
    to its tile before picking the plane). Other keys read the view first.

    Parameters
    ----------
    array : zarr.Array
        The array, opened read-only.
    cache_bytes : int
        Budget of its decoded-chunk cache.
    """

    def __init__(self, array: zarr.Array, *, cache_bytes: int = READ_CACHE_BYTES):
        self._chunks = _Chunks(array, cache_bytes)
        self._select(tuple(range(n) for n in array.shape))

    def _select(self, selection: tuple[range | int, ...]) -> None:
        #: Per axis of the array: the positions viewed, or the one an int fixed.
        self._selection = selection
        self.shape = tuple(len(s) for s in selection if isinstance(s, range))
        self.dtype = self._chunks.array.dtype
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)

    @property
    def array(self) -> zarr.Array:
        """The whole zarr array (of which this may be a view)."""
        return self._chunks.array

    @property
    def source(self) -> Source | None:
        """The chunkwise source that reads it (None: read through zarr)."""
        return self._chunks.source

    @property
    def chunkwise_input(self) -> Any:
        """What chunkwise processes for this: the zarr array if whole, else itself."""
        whole = all(
            isinstance(s, range) and s == range(n)
            for s, n in zip(self._selection, self.array.shape, strict=True)
        )
        return self.array if whole else self

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<LazyArray {self.shape} {self.dtype} of {self.array.store_path}>"

    def __getitem__(self, key: Any) -> Any:
        selection = _compose(self._selection, key, self.ndim)
        if selection is None:
            return np.asarray(self)[key]
        view = copy.copy(self)
        view._select(selection)
        if all(isinstance(k, slice) or k is Ellipsis for k in _entries(key)):
            return view
        data = view.read()
        return data[()] if data.ndim == 0 else data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.read(), dtype=dtype)

    def read(self) -> np.ndarray:
        """The values viewed, as a numpy array."""
        ranges = []
        for entry in self._selection:
            r = range(entry, entry + 1) if isinstance(entry, int) else entry
            ranges.append(r[::-1] if r.step < 0 else r)
        data = self._chunks.read(tuple(ranges))
        return data[
            tuple(
                0 if isinstance(e, int) else slice(None, None, -1 if e.step < 0 else 1)
                for e in self._selection
            )
        ]

    def sample(self) -> np.ndarray | None:
        """Values of a few stored chunks near the centre of the middle plane.

        None if no chunk there holds data.
        """
        return self._chunks.sample()


def _entries(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def _compose(
    selection: tuple[range | int, ...], key: Any, ndim: int
) -> tuple[range | int, ...] | None:
    """``selection`` further indexed by ``key``; None for a key not of ints and slices.

    One Ellipsis is allowed in the key; numpy reads booleans as masks, not integers.
    """
    entries = _entries(key)
    if any(
        isinstance(k, bool | np.bool_)
        or not (isinstance(k, slice | int | np.integer) or k is Ellipsis)
        for k in entries
    ):
        return None
    if sum(k is Ellipsis for k in entries) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in entries:
        at = entries.index(Ellipsis)
        fill = (slice(None),) * (ndim - len(entries) + 1)
        entries = entries[:at] + fill + entries[at + 1 :]
    if len(entries) > ndim:
        raise IndexError(f"too many indices: {len(entries)} for {ndim} dimensions")
    entries = entries + (slice(None),) * (ndim - len(entries))
    free = iter(entries)
    return tuple(
        s if isinstance(s, int) else s[_index(next(free), len(s))] for s in selection
    )


def _index(entry: slice | int, size: int) -> slice | int:
    if isinstance(entry, slice):
        return entry
    if not -size <= entry < size:
        raise IndexError(f"index {entry} is out of bounds for an axis of size {size}")
    return int(entry)


class _Chunks:
    """Reads ranges of a zarr array chunk by chunk, through a chunkwise Source."""

    def __init__(self, array: zarr.Array, cache_bytes: int) -> None:
        self.array = array
        self.cache_bytes = cache_bytes
        self.fill = np.asarray(
            0 if array.fill_value is None else array.fill_value, array.dtype
        )
        files = ChunkFiles.of(array)
        try:
            source = open_source(array, cache_bytes=cache_bytes)
        except ChunkwiseError:  # a shape or dtype chunkwise does not process
            source = None
        # Chunk files and a Source, or zarr reads everything.
        self.files = files if source is not None else None
        self.source = source if files is not None else None
        if self.files is not None:
            self.root = os.fspath(self.files.root)
            probe = tuple(0 for _ in array.shape)
            # Nested keys (".../c/0/1/2"): a row of chunks shares a directory whose
            # names are the last index. Flat keys ("0.1.2") are looked up one by one.
            self.nested = chunk_key(array, probe).rpartition("/")[2] == "0"

    def read(self, ranges: tuple[range, ...]) -> np.ndarray:
        """The values at ``ranges`` (steps > 0), one range per axis."""
        shape = tuple(len(r) for r in ranges)
        if 0 in shape:
            return np.empty(shape, self.array.dtype)
        if self.files is None:
            slices = tuple(slice(r.start, r.stop, r.step) for r in ranges)
            return np.asarray(self.array[slices])
        if self.fill.tobytes() == bytes(self.fill.itemsize):
            out = np.zeros(shape, self.array.dtype)  # untouched pages cost nothing
        else:
            out = np.full(shape, self.fill, self.array.dtype)
        runs = [_runs(r, c) for r, c in zip(ranges, self.array.chunks, strict=True)]
        stored = list(self._stored(runs))
        # A read whose chunks overflow the cache would only evict the preview's.
        chunk_bytes = math.prod(self.array.chunks) * self.array.dtype.itemsize
        cached = len(stored) * chunk_bytes <= self.cache_bytes
        for index, parts in stored:
            data = self.source.read(self._box(index), cached=cached)
            out[tuple(p[1] for p in parts)] = data[tuple(p[2] for p in parts)]
        return out

    def _box(self, index: tuple[int, ...]) -> Box:
        chunks, shape = self.array.chunks, self.array.shape
        start = tuple(i * c for i, c in zip(index, chunks, strict=True))
        stop = (min(a + c, n) for a, c, n in zip(start, chunks, shape, strict=True))
        return Box(start, tuple(stop))

    def _stored(self, runs: list[list[Run]]) -> Any:
        """The chunks of ``runs``' product that have a file, with their runs."""
        listings: dict[str, frozenset[str]] = {}
        *lead, last = runs
        for head in itertools.product(*lead):
            index = tuple(run[0] for run in head)
            if self.nested:
                folder = chunk_key(self.array, (*index, 0)).rpartition("/")[0]
                names = listings.get(folder)
                if names is None:
                    names = listings[folder] = _names(os.path.join(self.root, folder))
                if names:
                    yield from (
                        ((*index, run[0]), (*head, run))
                        for run in last
                        if str(run[0]) in names
                    )
                continue
            for run in last:
                key = chunk_key(self.array, (*index, run[0]))
                if os.path.exists(os.path.join(self.root, key)):
                    yield (*index, run[0]), (*head, run)

    def sample(self) -> np.ndarray | None:
        """Values of stored chunks nearest the middle plane's centre, or None.

        At most `SAMPLE_CHUNKS` of them; through zarr, the 4 x 4 chunks around it.
        """
        array = self.array
        shape, chunks = array.shape, array.chunks
        plane = max(array.ndim - 2, 0)
        sizes = list(zip(shape, chunks, strict=True))
        centre = [n // 2 // c for n, c in sizes]
        if self.files is None:
            ranges = [
                range(n // 2, n // 2 + 1)
                if axis < plane
                else range(max(k - 2, 0) * c, min((k + 2) * c, n))
                for axis, (k, (n, c)) in enumerate(zip(centre, sizes, strict=True))
            ]
            return self.read(tuple(ranges)).ravel()
        # Chunks within 16 of the centre on the plane's axes, nearest first.
        runs = [
            [(k, slice(None), slice(None))]
            if axis < plane
            else [
                (i, slice(None), slice(None))
                for i in range(max(k - 16, 0), min(k + 17, -(-n // c)))
            ]
            for axis, (k, (n, c)) in enumerate(zip(centre, sizes, strict=True))
        ]
        stored = sorted(
            (index for index, _ in self._stored(runs)),
            key=lambda index: math.dist(index, centre),
        )[:SAMPLE_CHUNKS]
        if not stored:
            return None
        return np.concatenate(
            [self.source.read(self._box(index)).ravel() for index in stored]
        )


def _runs(r: range, size: int) -> list[Run]:
    """The chunks of side ``size`` that ``r`` (step > 0, not empty) selects from."""
    if r.step >= size:  # one position per chunk at most
        return [
            (v // size, slice(i, i + 1), slice(v % size, v % size + 1))
            for i, v in enumerate(r)
        ]
    runs = []
    for k in range(r[0] // size, r[-1] // size + 1):
        low = k * size
        first = max(0, -(-(low - r.start) // r.step))
        stop = min(len(r), -(-(low + size - r.start) // r.step))
        if first < stop:
            inner = slice(r[first] - low, r[stop - 1] - low + 1, r.step)
            runs.append((k, slice(first, stop), inner))
    return runs


def _names(folder: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
