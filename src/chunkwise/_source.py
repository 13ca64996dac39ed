"""Inputs: open a path, URL, zarr array or numpy array read-only, and read boxes.

Reads go through a per-process `ChunkCache` of decoded chunks, looked up by the
source's token, so the threads of a run share it and each loky worker keeps one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
import zarr.codecs
from zarr.storage import LocalStore, ZipStore

from chunkwise._cache import ChunkCache
from chunkwise._chunkfiles import ChunkFiles
from chunkwise._geometry import Box, chunk_boxes, spatial_axes
from chunkwise._keys import all_fill, chunk_key, stored_index
from chunkwise._remote import (
    DEFAULT_TIMEOUT,
    check_storage_options,
    check_timeout,
    is_url,
    open_url,
)
from chunkwise._secrets import redact, scrub
from chunkwise._zarr_compat import sync
from chunkwise.errors import BlockError, ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_CACHE_BYTES", "Source", "is_url", "open_source", "with_axes"]

DEFAULT_CACHE_BYTES = 128 * 2**20
_CACHES: OrderedDict[str, ChunkCache[tuple[int, ...], _Piece]] = OrderedDict()
_MAX_CACHES = 4
_RECENT: OrderedDict[tuple[int, int, str], tuple[zarr.Array, Source]] = OrderedDict()


@dataclass(eq=False)
class Source:
    """A read-only input volume: a zarr array or a numpy array."""

    array: Any
    location: str
    #: Budget of the decoded-chunk cache; None: `DEFAULT_CACHE_BYTES`, or for a run,
    #: a budget sized from its plan (see `chunkwise._resources.cache_budget`).
    cache_bytes: int | None = None
    #: "fill": a chunk that was never written reads as the fill value, as in Zarr;
    #: "error": it stops the run (for copies that may be incomplete).
    missing: str = "fill"
    #: The local path the input was named by, when it was (an OME-Zarr image's group,
    #: say, while ``array`` is its level 0).
    named_path: str | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: The input's files when the run started (`chunkwise._fingerprint.Listing`):
    #: a chunk listed then and missing now fails the read instead of filling.
    listing: Any = None
    #: The OME-Zarr image the input is a level of (`chunkwise._ngff.Multiscale`,
    #: that level alone), or None for a plain array (unless `with_axes` names its
    #: axes).
    image: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the volume."""
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the volume."""
        return np.dtype(self.array.dtype)

    @property
    def spatial(self) -> tuple[int, ...]:
        """The space axes: as the OME-Zarr metadata says, else the last 3 (or 2)."""
        if self.image is not None:
            return self.image.spatial
        return spatial_axes(len(self.shape))

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape (inner chunks for sharded arrays; a dask array's chunk size)."""
        if isinstance(self.array, zarr.Array):
            return tuple(self.array.chunks)
        chunksize = getattr(self.array, "chunksize", None)
        return None if chunksize is None else tuple(int(c) for c in chunksize)

    @property
    def cache(self) -> ChunkCache[tuple[int, ...], _Piece]:
        """The process-wide cache of decoded chunks of this source."""
        cache = _CACHES.get(self.token)
        if cache is None:
            budget = self.cache_bytes
            cache = _CACHES[self.token] = ChunkCache(
                DEFAULT_CACHE_BYTES if budget is None else budget
            )
            while len(_CACHES) > _MAX_CACHES:
                _CACHES.popitem(last=False)
        return cache

    def describe(self) -> dict[str, Any]:
        """Location, shape, chunks and dtype, for provenance and resume checks."""
        chunks = self.chunks
        return {
            "location": self.location,
            "shape": list(self.shape),
            "chunks": None if chunks is None else list(chunks),
            "dtype": self.dtype.name,
        }

    def read(self, box: Box, *, cached: bool = True) -> np.ndarray:
        """Return the input over ``box`` (inside the volume), read-only.

        ``cached=False`` is for chunks no other read will need: they are decoded
        and copied out without passing through the cache.
        """
        if not isinstance(self.array, zarr.Array):
            # In memory, or lazy with its own chunking (dask): read the box at once.
            data = self.array[box.slices]
            if not isinstance(data, np.ndarray):
                data = np.asarray(data)
            data.flags.writeable = False
            return data
        cached = cached and self.cache_bytes != 0
        if not cached and self._direct is None:
            return self._load(None, box)

        def chunk(index: tuple[int, ...], chunk_box: Box, need: Box) -> _Piece:
            if cached:
                return self._chunk(index, chunk_box, need)
            return _Piece(chunk_box, self._load(index, chunk_box))

        pieces = list(chunk_boxes(box, self.chunks, self.shape))
        if len(pieces) == 1:
            index, chunk_box = pieces[0]
            piece = chunk(index, chunk_box, box)
            return piece.data[box.relative_to(piece.box)]
        out = np.empty(box.shape, self.dtype)
        for index, chunk_box in pieces:
            part = box.intersect(chunk_box)
            piece = chunk(index, chunk_box, part)
            out[part.relative_to(box)] = piece.data[part.relative_to(piece.box)]
        return out

    def release(
        self, box: Box, still_read: Callable[[Box], tuple[Box, int] | None]
    ) -> None:
        """Shrink cached chunks under ``box`` to what later reads still need.

        ``still_read(chunk_box)`` is the part of the chunk that blocks yet to finish
        read and the earliest of those blocks (ranking the chunk for eviction), or
        None. A run calls this after each block: a chunk no block reads
        again is dropped, and one whose later readers need only a halo-thin face is
        cut down to that face. The cache then holds the front of the traversal, and
        for halo filters mostly thin faces of it, so memory barely grows with the
        volume. A read that needs more than a shrunk chunk holds decodes it again.
        """
        if not isinstance(self.array, zarr.Array) or self.cache_bytes == 0:
            return
        cache = self.cache
        for index, chunk_box in chunk_boxes(box, self.chunks, self.shape):
            later = still_read(chunk_box)
            if later is None:
                cache.discard(index)
            else:
                keep, next_reader = later
                cache.shrink(index, lambda p, keep=keep: p.cropped(keep), next_reader)

    def _chunk(self, index: tuple[int, ...], chunk_box: Box, need: Box) -> _Piece:
        return self.cache.get(
            index,
            lambda: _Piece(chunk_box, self._load(index, chunk_box)),
            lambda piece: piece.box.contains(need),
        )

    def _is_stored(self, index: tuple[int, ...]) -> bool:
        """Whether the key holding chunk ``index`` (its shard, if sharded) exists."""
        store = self.array.store_path.store
        try:
            return sync(store.exists(chunk_key(self.array, self._unit(index))))
        except Exception as error:
            raise BlockError(
                f"input chunk {index} of {self.location} could not be read: "
                f"{type(error).__name__}: {scrub(str(error))}"
            ) from error

    def _unit(self, index: tuple[int, ...]) -> tuple[int, ...]:
        return stored_index(self.array, index)

    def _require_stored(self, box: Box) -> None:
        """Raise if a chunk under ``box`` was never written (``missing="error"``).

        In a sharded array the check is per shard: the shard index tells which inner
        chunks were written only after reading it.
        """
        for index, _ in chunk_boxes(box, self.chunks, self.shape):
            if not self._is_stored(index):
                raise BlockError(
                    f"input chunk {index} of {self.location} is missing (no "
                    f"{chunk_key(self.array, self._unit(index))!r}); pass "
                    "missing='fill' to read missing chunks as the fill value"
                )

    @functools.cached_property
    def _direct(self) -> ChunkFiles | None:
        return ChunkFiles.of(self.array) if isinstance(self.array, zarr.Array) else None

    def _load(self, index: tuple[int, ...] | None, box: Box) -> np.ndarray:
        direct = self._direct if index is not None else None
        if direct is not None:
            try:
                data = direct.read(index, box)
            except Exception as error:
                raise BlockError(
                    f"input chunk {index} of {self.location} could not be read: "
                    f"{type(error).__name__}: {scrub(str(error))}"
                ) from error
            if data is not None:
                data.flags.writeable = False
                return data
            self._check_not_vanished(index)
            if self.missing == "fill":
                # Never written: the fill value, as zarr would read it, but without
                # zarr's event loop (2.7 ms a chunk, most of a preview of a sparse
                # volume: benchmarks/results/preview.md) or memory (a read-only
                # broadcast of one value).
                fill = self.array.fill_value
                value = np.asarray(0 if fill is None else fill, self.dtype)
                return np.broadcast_to(value, box.shape)
            # missing="error": the check below names the chunk.
        if self.missing == "error":
            self._require_stored(box)
        try:
            data = np.asarray(self.array[box.slices])
        except Exception as error:
            what = (
                f"input chunk {index}" if index is not None else f"input region {box}"
            )
            raise BlockError(
                f"{what} of {self.location} could not be read: "
                f"{type(error).__name__}: {scrub(str(error))}"
            ) from error
        if self.listing is not None and direct is None:
            self._check_filled(box, data)
        data.flags.writeable = False
        return data

    def _check_not_vanished(self, index: tuple[int, ...]) -> None:
        """Raise if chunk ``index`` existed when the run started."""
        if self.listing is not None and self.listing.had(self._unit(index)):
            raise BlockError(
                f"input chunk {index} of {self.location} vanished during the run "
                "(it existed when the run started)"
            )

    def _check_filled(self, box: Box, data: np.ndarray) -> None:
        """Where zarr read fill values, check that those chunks were never there.

        zarr reads a chunk whose file is gone as the fill value; only a chunk that
        is all fill value can be one, and only those are looked up.
        """
        fill = np.asarray(self.array.fill_value, self.dtype)
        for index, chunk_box in chunk_boxes(box, self.chunks, self.shape):
            part = data[box.intersect(chunk_box).relative_to(box)]
            if (
                all_fill(part, fill)
                and self.listing.had(self._unit(index))
                and not self._is_stored(index)
            ):
                self._check_not_vanished(index)


@dataclass(frozen=True, slots=True)
class _Piece:
    """A decoded chunk in the cache, or the part of it later blocks still read."""

    box: Box
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self.data.nbytes

    def cropped(self, keep: Box) -> _Piece | None:
        """Cut to ``keep`` (None if outside); unchanged if that would save under 1/4."""
        keep = keep.intersect(self.box)
        if keep is None:
            return None
        if 4 * keep.size > 3 * self.box.size:
            return self
        data = self.data[keep.relative_to(self.box)].copy()
        data.flags.writeable = False
        return _Piece(keep, data)


def _check_array(array: Any, location: str) -> None:
    if not 1 <= array.ndim <= 5:
        raise ChunkwiseError(
            f"{location} has {array.ndim} dimensions; chunkwise processes 1D to 5D "
            "arrays (the last 3 axes are spatial, all of them in 1D and 2D)"
        )
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "buif" or dtype == np.float16:
        raise ChunkwiseError(
            f"{location} has dtype {dtype}; chunkwise processes boolean, integer, "
            "float32 and float64 data"
        )
    if isinstance(array, zarr.Array):
        # zarr v2 accepts any chunk shape in .zarray; a 0 there fails much later,
        # dividing by it.
        for name in ("chunks", "shards"):
            sides = getattr(array, name)
            if sides is not None and (
                len(sides) != array.ndim or any(int(c) < 1 for c in sides)
            ):
                raise ChunkwiseError(
                    f"{location} has {name} {tuple(sides)}; every side must be a "
                    "whole number >= 1 (the array's metadata is damaged)"
                )


def _open_store(
    path: str,
    timeout: float | None = DEFAULT_TIMEOUT,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    if is_url(path):
        return open_url(path, timeout, storage_options)
    # Absolute: a dask worker elsewhere resolves a relative path from its own
    # working directory.
    local = Path(path.removeprefix("file://")).expanduser().absolute()
    if not local.exists():
        raise ChunkwiseError(f"input not found: {local}")
    if local.is_file() and local.suffix == ".zip":
        return ZipStore(local, mode="r", read_only=True)
    return LocalStore(local, read_only=True)


def _open_zarr(
    path: str,
    timeout: float | None = DEFAULT_TIMEOUT,
    level: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple[zarr.Array, str, Any]:
    """The array at ``path``, its location for messages, and its image.

    For an OME-Zarr image, the array is level ``level`` and the image its
    `chunkwise._ngff.Multiscale`; for an array, the image is None. A URL's
    location is the URL without its secrets (`chunkwise._remote.redact`).
    """
    from chunkwise._ngff import read_multiscale

    store = _open_store(path, timeout, storage_options)
    remote = is_url(path)
    # What messages and the output's record show: never a password or token.
    location = redact(path) if remote else os.path.abspath(path)
    try:
        node = zarr.open(store=store, mode="r")
    except TimeoutError as error:
        raise ChunkwiseError(str(error) or f"reading {location} timed out") from None
    except Exception as error:
        if remote and isinstance(
            error, FileNotFoundError | zarr.errors.NodeNotFoundError
        ):
            raise ChunkwiseError(
                f"input not found: no Zarr array or group at {location}"
            ) from None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ChunkwiseError(
            f"{location if remote else path} is not a readable Zarr store: "
            + (scrub(reason, storage_options) if remote else reason)
        ) from error
    path = location if remote else path
    if not isinstance(node, zarr.Group):
        if level:
            raise ChunkwiseError(f"{path} is one array, it has no level {level}")
        return node, location, None
    image = read_multiscale(node)
    if image is None:
        names = ", ".join(sorted(node.array_keys())) or "none"
        raise ChunkwiseError(
            f"{path} is a Zarr group, not an array; name one of its arrays "
            f"(arrays: {names})"
        )
    level = level or 0
    if not 0 <= level < len(image.levels):
        raise ChunkwiseError(
            f"{path} has levels 0 to {len(image.levels) - 1}; there is no level {level}"
        )
    chosen = image.levels[level]
    try:
        array = node[chosen.path]
    except KeyError:
        raise ChunkwiseError(f"{path}: its level {chosen.path} is missing") from None
    if not isinstance(array, zarr.Array):
        raise ChunkwiseError(f"{path}: its level {chosen.path} is not an array")
    return (
        array,
        f"{location}/{chosen.path}",
        dataclasses.replace(image, levels=(chosen,)),
    )


def _image_of(array: zarr.Array) -> Any:
    """The OME-Zarr image ``array`` is a level of (that level alone), or None.

    A level handed over as an array (a napari layer's) keeps its axes, scale and
    translation for an OME-Zarr output.
    """
    from chunkwise._ngff import read_multiscale

    parent, _, name = array.store_path.path.rpartition("/")
    if not name:
        return None
    try:
        group = zarr.open_group(store=array.store_path.store, path=parent, mode="r")
        image = read_multiscale(group)
    except Exception:  # no group there, or not one we can read: a plain array
        return None
    chosen = [level for level in (image.levels if image else ()) if level.path == name]
    return dataclasses.replace(image, levels=(chosen[0],)) if chosen else None


def open_source(
    source: Any,
    *,
    cache_bytes: int | None = None,
    missing: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    level: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Source:
    """Open an input read-only.

    Parameters
    ----------
    source : str, os.PathLike, zarr.Array, numpy.ndarray, dask array or Source
        A local directory or ``.zip`` store, an fsspec URL, an OME-Zarr image (its
        full-resolution level is used), an open array, an in-memory array, or any
        lazy array with ``shape``, ``dtype`` and numpy-style slicing (dask).
    cache_bytes : int, optional
        Budget of this process's cache of decoded input chunks (0 disables it).
        Default: sized by each run from its plan; 128 MiB for other reads.
    missing : {"fill", "error"}, optional
        What a chunk that was never written means: the fill value (Zarr's rule, right
        for sparse data), or an error naming the chunk (for copies that may be
        incomplete). Default: ``"error"`` for URLs (an HTTP server cannot list its
        files, and one that answers 404 for a chunk it served before would turn it
        into fill values), ``"fill"`` otherwise.
    timeout : float or None
        Seconds an ``http(s)://`` input may send nothing before a read fails,
        saying what timed out (None: wait for ever). Default 60.
    storage_options : dict, optional
        fsspec's options for the file system of a URL input, such as
        ``{"endpoint_url": "http://...", "anon": True}`` for ``s3://``; ignored
        for other inputs. Settings in the environment (``AWS_ENDPOINT_URL``,
        ``AWS_PROFILE``...) apply as well. They are not recorded anywhere.

    Returns
    -------
    Source

    Raises
    ------
    ChunkwiseError
        If the input is missing, not Zarr, or of an unsupported shape or dtype.
    """
    remote = isinstance(source, str | os.PathLike) and is_url(os.fspath(source))
    if missing is None:
        missing = "error" if remote else "fill"
    if missing not in ("fill", "error"):
        raise ChunkwiseError(f"missing must be 'fill' or 'error', got {missing!r}")
    timeout = check_timeout(timeout)
    if storage_options is not None:
        storage_options = check_storage_options(storage_options)
    if cache_bytes is not None and (
        isinstance(cache_bytes, bool)
        or not isinstance(cache_bytes, int)
        or cache_bytes < 0
    ):
        raise ChunkwiseError(
            f"cache_bytes must be a whole number of bytes >= 0, got {cache_bytes!r}"
        )
    if isinstance(source, Source):
        return source
    # A view that shows a whole zarr array (the napari reader's layers) names it:
    # the array is processed, with its chunk files, location and fingerprint.
    source = getattr(source, "chunkwise_input", source)
    if isinstance(source, np.ndarray):
        _check_array(source, "the input array")
        return Source(source, "<numpy array>", cache_bytes, missing)
    named = None
    if isinstance(source, zarr.Array):
        key = (id(source), cache_bytes, missing)
        if key in _RECENT and _RECENT[key][0] is source:
            # The same open array keeps its cache: repeated previews decode less.
            return _RECENT[key][1]
        _check_array(source, str(source.store_path))
        opened = Source(
            source,
            str(source.store_path),
            cache_bytes,
            missing,
            image=_image_of(source),
        )
        _RECENT[key] = (source, opened)
        while len(_RECENT) > _MAX_CACHES:
            _RECENT.popitem(last=False)
        return opened
    image = None
    if isinstance(source, str | os.PathLike):
        array, location, image = _open_zarr(
            os.fspath(source), timeout, level, storage_options if remote else None
        )
        if not remote:
            named = os.path.abspath(os.fspath(source).removeprefix("file://"))
    elif all(hasattr(source, a) for a in ("shape", "dtype", "ndim", "__getitem__")):
        array, location = source, f"<{type(source).__module__}.{type(source).__name__}>"
    else:
        raise ChunkwiseError(
            f"cannot read {type(source).__name__} input; give a path, URL, "
            "zarr.Array, numpy or dask array"
        )
    if level and image is None:
        raise ChunkwiseError(f"level {level} needs an OME-Zarr image as the input")
    _check_array(array, location)
    return Source(array, location, cache_bytes, missing, named, image=image)


def with_axes(source: Source, axes: str | None) -> Source:
    """``source`` with its axes named by ``axes`` (``"czyx"``, ``"yxc"``...).

    None keeps what the input says (its OME-Zarr axes, else space last). Axes that
    contradict the input's OME-Zarr metadata are refused.
    """
    if axes is None:
        return source
    from chunkwise._ngff import plain
    from chunkwise.ops._axes import AXIS_TYPES, axes_spatial, check_axes

    letters = check_axes(axes, len(source.shape))
    if source.image is not None:
        if source.image.spatial != axes_spatial(letters):
            names = "".join(str(a.get("name", "?")) for a in source.image.axes)
            raise ChunkwiseError(
                f"axes {axes!r} contradict the input's OME-Zarr axes {names!r}; "
                "leave axes out to use the input's"
            )
        return source
    named = tuple({"name": a, "type": AXIS_TYPES[a]} for a in letters)
    image = dataclasses.replace(plain(source.shape), axes=named)
    # A copy with the same token: it shares the original's cache of chunks.
    return dataclasses.replace(source, image=image)
