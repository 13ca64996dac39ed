"""Outputs: create the Zarr array, record provenance, and keep the resume ledger.

The ledger is one empty key per finished work block, under ``chunkwise-ledger/`` in
the output's own store, apart from the chunk data: an existing chunk proves nothing,
since zarr does not write chunks equal to the fill value. A block's key is written
only after all its chunks, so a run killed at any moment resumes correctly.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np
import zarr
import zarr.codecs
from zarr.storage import (
    FsspecStore,
    LocalStore,
    MemoryStore,
    WrapperStore,
    ZipStore,
)

from chunkwise._chunkfiles import ChunkFiles
from chunkwise._geometry import Box, chunk_boxes
from chunkwise._keys import all_fill, stored_units
from chunkwise._remote import is_url, open_url
from chunkwise._secrets import redact
from chunkwise._zarr_compat import bytes_buffer, cpu, sync
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chunkwise._output import Fence
    from chunkwise._source import Source

__all__ = [
    "CODECS",
    "Ledger",
    "Output",
    "Status",
    "check_output_location",
    "create_image",
    "create_output",
    "now",
    "open_output",
    "output_store",
    "parse_codec",
    "provenance",
    "update_provenance",
    "write_box",
]

LEDGER = "chunkwise-ledger"
ATTRIBUTE = "chunkwise"
CODECS = ("zstd", "lz4", "blosc-zstd", "gzip", "none")
#: zstd defaults to level 1: on 64**3 uint8 chunks it compressed 2-5x faster than
#: level 3 (heart scan: 2.05 vs 4.59 ms a chunk, synthetic CT: 0.74 vs 3.73 ms) for
#: files at most 5% larger (heart: ratio 1.78 vs 1.88), and writing was a fifth of
#: a Gaussian run's CPU time at level 3.
_DEFAULT_LEVELS = {"zstd": 1, "lz4": 5, "blosc-zstd": 3, "gzip": 5}


def now() -> str:
    """The current UTC time in ISO 8601, for provenance."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def parse_codec(spec: str, zarr_format: int) -> list[Any]:
    """Compressors for ``spec`` (``name`` or ``name:level``) in the given format.

    ``zstd`` is plain Zstandard, ``lz4`` and ``blosc-zstd`` are Blosc with byte
    shuffle, ``gzip`` is zlib and ``none`` stores raw bytes.
    """
    name, _, level_text = spec.strip().lower().partition(":")
    if name not in CODECS:
        raise ChunkwiseError(f"codec must be one of {', '.join(CODECS)}; got {spec!r}")
    if name == "none":
        return []
    try:
        level = int(level_text) if level_text else _DEFAULT_LEVELS[name]
    except ValueError:
        raise ChunkwiseError(
            f"codec level must be a whole number, got {spec!r}"
        ) from None
    if name == "zstd":
        if not -131072 <= level <= 22:
            raise ChunkwiseError(f"zstd level must be -131072 to 22, got {level}")
        # With a checksum, resume and `chunkwise verify` catch a flipped byte: without
        # one, zstd decoded 3 of 4 damaged chunks silently.
        return [
            numcodecs.Zstd(level=level, checksum=True)
            if zarr_format == 2
            else zarr.codecs.ZstdCodec(level=level, checksum=True)
        ]
    if name == "gzip":
        if not 0 <= level <= 9:
            raise ChunkwiseError(f"gzip level must be 0 to 9, got {level}")
        return [
            numcodecs.GZip(level=level)
            if zarr_format == 2
            else zarr.codecs.GzipCodec(level=level)
        ]
    if not 0 <= level <= 9:
        raise ChunkwiseError(f"blosc level must be 0 to 9, got {level}")
    cname = "lz4" if name == "lz4" else "zstd"
    if zarr_format == 2:
        return [
            numcodecs.Blosc(cname=cname, clevel=level, shuffle=numcodecs.Blosc.SHUFFLE)
        ]
    return [zarr.codecs.BloscCodec(cname=cname, clevel=level, shuffle="shuffle")]


def output_store(out: Any, storage_options: dict[str, Any] | None = None) -> Any:
    """The zarr store for ``out``: a path, an fsspec URL, a store, or None (memory).

    ``storage_options`` go to the file system of a URL (see
    `chunkwise._remote.open_url`); other outputs ignore them.
    """
    if out is None:
        return MemoryStore()
    if isinstance(out, str | os.PathLike):
        path = os.fspath(out)
        if not path.strip():
            raise ChunkwiseError("the output path is empty")
        if is_url(path):
            return _url_store(path, storage_options)
        if path.endswith(".zip"):
            raise ChunkwiseError(
                "zip stores cannot be written in parallel; write a directory and zip it"
            )
        # Absolute: a dask worker elsewhere would resolve a relative path from its
        # own working directory, and write where the driver never looks.
        return LocalStore(Path(path.removeprefix("file://")).expanduser().absolute())
    if isinstance(out, zarr.abc.store.Store):
        if out.read_only:
            raise ChunkwiseError("the output store is read-only")
        return out
    raise ChunkwiseError(
        f"cannot write to {type(out).__name__}; give a path, URL or zarr store"
    )


def _url_store(url: str, storage_options: dict[str, Any] | None = None) -> Any:
    """A writable fsspec store for ``url``, or a one-line error."""
    protocol = url.split("://", 1)[0].lower()
    if protocol in ("http", "https"):
        raise ChunkwiseError(
            f"cannot write to {redact(url)}: HTTP is read-only; give a path"
        )
    return open_url(url, None, storage_options, read_only=False, role="output")


def _local_path(store: Any) -> Path | None:
    if isinstance(store, LocalStore):
        return Path(store.root).resolve()
    if isinstance(store, ZipStore):
        return Path(store.path).resolve()
    return None


def _identities(path: Path) -> set[tuple[int, int]]:
    """Device and inode of ``path`` and each existing folder above it."""
    found = set()
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError):
            info = folder.stat()
            found.add((info.st_dev, info.st_ino))
    return found


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def check_output_location(store: Any, source: Source) -> None:
    """Refuse an output that is the input, lies inside it, or contains it.

    Paths are compared by identity (device and inode) as well as by name, so an
    alias of the input (a bind mount, a symlink, a second mount of one disk) is
    recognised too.
    """
    out_path = _local_path(store)
    array = source.array
    if not isinstance(array, zarr.Array):
        # numpy and lazy (dask) inputs name no store to compare with.
        return
    if out_path is None:
        _check_remote_location(store, source)
        return
    in_store = _local_path(array.store_path.store)
    if in_store is None:
        return
    in_path = (in_store / array.store_path.path).resolve()
    named = Path(source.named_path).resolve() if source.named_path else in_path
    inputs = {i for i in (_identity(in_path), _identity(named)) if i is not None}
    if (
        out_path in (in_path, named)
        or {in_path, named} & set(out_path.parents)
        or inputs & _identities(out_path)
    ):
        raise ChunkwiseError(f"the output {out_path} is the input or inside it")
    out_identity = _identity(out_path)
    if (
        out_path in in_path.parents
        or out_path == in_store
        or (out_identity is not None and out_identity in _identities(in_path))
    ):
        raise ChunkwiseError(f"the output {out_path} contains the input {in_path}")


def _remote_place(store: Any, path: str = "") -> tuple[str, Any, str] | None:
    """Protocol, endpoint (None: the default) and path of an object-store key."""
    if isinstance(store, WrapperStore):  # an HTTP input with its timeout
        store = store._store
    if not isinstance(store, FsspecStore):
        return None
    fs = store.fs
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    options = fs.storage_options
    endpoint = options.get("endpoint_url") or dict(
        options.get("client_kwargs") or {}
    ).get("endpoint_url")
    return protocol, endpoint, "/".join(p for p in (store.path, path) if p).strip("/")


def _check_remote_location(store: Any, source: Source) -> None:
    """Refuse an object-store output that is the input, lies inside it or holds it.

    By URL: an endpoint left to the environment may be the one the other names.
    The input of an OME-Zarr level is its whole image.
    """
    out = _remote_place(store)
    array = source.array
    path = array.store_path.path
    if source.image is not None:
        path = path.rpartition("/")[0]
    into = _remote_place(array.store_path.store, path)
    if out is None or into is None or out[0] != into[0]:
        return
    if out[1] and into[1] and out[1] != into[1]:
        return
    shown, input_shown = f"{out[0]}://{out[2]}", f"{into[0]}://{into[2]}"
    if out[2] == into[2] or into[2].startswith(f"{out[2]}/"):
        raise ChunkwiseError(
            f"the output {shown} is or contains the input {input_shown}"
        )
    if out[2].startswith(f"{into[2]}/"):
        raise ChunkwiseError(f"the output {shown} is inside the input {input_shown}")


def create_output(
    store: Any,
    *,
    shape: tuple[int, ...],
    dtype: np.dtype,
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None,
    zarr_format: int,
    codec: str,
    attributes: dict[str, Any] | None,
    overwrite: bool = False,
    name: str | None = None,
    dimension_names: tuple[str, ...] | None = None,
) -> zarr.Array:
    """Create the output array; ``overwrite`` replaces one in a non-local store.

    ``attributes`` is its chunkwise record (None: none, as for a pyramid level);
    ``name`` puts it in the group at ``store``; ``dimension_names`` (Zarr v3) name
    its axes, as NGFF 0.5 requires of an image's levels.

    Local outputs are replaced by `chunkwise._output.claim_output` before this,
    which keeps the run's lock in the directory: zarr's own overwrite would delete
    it, and everything else there.
    """
    if zarr_format not in (2, 3):
        raise ChunkwiseError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if shards is not None and zarr_format == 2:
        raise ChunkwiseError("sharding needs zarr_format=3")
    return zarr.create_array(
        store,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        shards=shards,
        # None, not [], means "no compressor" to Zarr format 2.
        compressors=parse_codec(codec, zarr_format) or None,
        fill_value=0,
        zarr_format=zarr_format,
        attributes={} if attributes is None else {ATTRIBUTE: attributes},
        overwrite=overwrite and not isinstance(store, LocalStore),
        name=name,
        dimension_names=dimension_names if zarr_format == 3 else None,
    )


def create_image(
    store: Any,
    image: Any,
    zarr_format: int,
    *,
    attributes: dict[str, Any],
    overwrite: bool = False,
) -> zarr.Group:
    """Create the group of an OME-Zarr output; its levels come after.

    It holds the NGFF metadata of ``image`` (`chunkwise._ngff.Multiscale`) and
    ``attributes``.
    """
    if zarr_format not in (2, 3):
        raise ChunkwiseError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    return zarr.create_group(
        store,
        zarr_format=zarr_format,
        attributes=image.attributes(zarr_format) | attributes,
        overwrite=overwrite and not isinstance(store, LocalStore),
    )


@dataclass(frozen=True)
class ChunkWriter:
    """Whole chunks of a local output, encoded and written to their files directly.

    With zstd at level 1 a 64**3 uint8 chunk compresses in about 0.7 ms, but
    writing it through zarr's event loop took about 5 ms of the job's thread: a
    quarter of a Gaussian run's thread time. Where zarr's write is "pad an edge
    chunk with the fill value, reinterpret as bytes, compress, store the file, or
    delete it when the chunk is all fill value" (`ChunkFiles` with zstd, gzip or no
    compressor, empty chunks not written), chunkwise does that itself with the same
    numcodecs codec; anything else goes through zarr.
    """

    files: ChunkFiles
    #: Checked before each chunk lands: the run still owns the output.
    fence: Fence | None = None

    @classmethod
    def of(cls, array: zarr.Array, fence: Fence | None = None) -> ChunkWriter | None:
        """The direct writer of ``array``, or None if zarr must write it."""
        files = ChunkFiles.of(array)
        if (
            files is None
            or zarr.config.get("array.write_empty_chunks")
            or not isinstance(files.codec, numcodecs.Zstd | numcodecs.GZip | None)
        ):
            return None
        return cls(files, fence)

    def write(self, box: Box, data: np.ndarray) -> bytes:
        """Write ``data``, which covers whole chunks, over ``box``.

        Returns its `written_map`: the writer already knows which chunks it stored.
        """
        files = self.files
        array = files.array
        fill = np.asarray(array.fill_value, array.dtype)
        written = []
        for index, chunk_box in chunk_boxes(box, array.chunks, array.shape):
            part = data[chunk_box.relative_to(box)]
            path = files.path(index)
            if self.fence is not None:
                self.fence.check()
            empty = all_fill(part, fill)
            written.append(not empty)
            if empty:
                path.unlink(missing_ok=True)
                continue
            if part.shape != tuple(array.chunks):
                padded = np.full(array.chunks, fill, files.stored_dtype)
                padded[tuple(slice(0, n) for n in part.shape)] = part
                part = padded
            raw = np.ascontiguousarray(part, files.stored_dtype)
            encoded = raw.tobytes() if files.codec is None else files.codec.encode(raw)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Atomically, as zarr's LocalStore does: a viewer reading the output
            # while the run writes it must never see half a chunk.
            partial = path.with_suffix(f".{uuid.uuid4().hex}.partial")
            try:
                partial.write_bytes(encoded)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        return _pack(written)


def write_box(
    array: zarr.Array,
    box: Box,
    data: np.ndarray,
    writer: ChunkWriter | None = None,
    fence: Fence | None = None,
) -> bytes:
    """Write ``data`` (whole chunks) over ``box``; return its `written_map`.

    Directly with ``writer`` where it has one, through zarr otherwise; either way
    ``fence`` is checked first.
    """
    if writer is not None:
        return writer.write(box, data)
    if fence is not None:
        fence.check()
    array[box.slices] = data
    return written_map(array, box, data)


def written_map(array: zarr.Array, box: Box, data: np.ndarray) -> bytes:
    """Which stored chunks (shards) of ``box`` hold data, as packed bits in C order.

    zarr, and `ChunkWriter`, store no chunk that is all fill value: the others must
    exist once the block is written. The ledger keeps this map, so that a chunk
    file lost later is noticed, not read as fill values.
    """
    fill = np.asarray(array.fill_value, array.dtype)
    return _pack(
        not all_fill(data[unit.relative_to(box)], fill)
        for _, unit in chunk_boxes(box, stored_units(array), array.shape)
    )


def _pack(bits: Iterable[bool]) -> bytes:
    return np.packbits(np.fromiter(bits, dtype=bool)).tobytes()


def provenance(array: zarr.Array) -> dict[str, Any]:
    """The chunkwise provenance record of an output ({} if it has none, or junk)."""
    record = array.attrs.get(ATTRIBUTE, {})
    return dict(record) if isinstance(record, dict) else {}


def update_provenance(
    array: zarr.Array, *, drop: tuple[str, ...] = (), **fields: Any
) -> None:
    """Merge ``fields`` into the output's provenance record, less ``drop``."""
    record = {k: v for k, v in provenance(array).items() if k not in drop}
    array.update_attributes({ATTRIBUTE: record | fields})


@dataclass(frozen=True)
class Ledger:
    """Which work blocks of an output are complete: one empty key per block."""

    store: Any
    prefix: str

    @classmethod
    def of(cls, array: zarr.Array) -> Ledger:
        """The ledger kept beside ``array``'s chunks."""
        path = array.store_path.path
        return cls(
            array.store_path.store, f"{path}/{LEDGER}/" if path else f"{LEDGER}/"
        )

    @property
    def _folder(self) -> Path | None:
        """The ledger's directory if the store is local, None otherwise.

        A local ledger is read and written directly: through zarr's event loop a
        mark took about 4 ms, a tenth of a small block's time.
        """
        if isinstance(self.store, LocalStore):
            return Path(self.store.root) / self.prefix
        return None

    def mark(self, index: int, written: bytes = b"") -> None:
        """Record block ``index`` as complete (call after its chunks are written).

        ``written`` is its `written_map`.
        """
        folder = self._folder
        if folder is None:
            sync(self.store.set(f"{self.prefix}{index}", bytes_buffer(written)))
            return
        folder.mkdir(parents=True, exist_ok=True)
        # Plain strings: pathlib interns every name it parses, and a run of 20,000
        # blocks grew the interpreter's table of interned names by 1.9 MB.
        path = os.path.join(folder, str(index))
        # Atomically, as chunks are: a killed run never leaves half a written map.
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(partial, "wb") as file:
                file.write(written)
            os.replace(partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)

    def written(self, index: int) -> bytes:
        """The `written_map` recorded for block ``index`` (empty if none)."""
        folder = self._folder
        if folder is not None:
            try:
                return (folder / str(index)).read_bytes()
            except FileNotFoundError:
                return b""
        value = sync(self.store.get(f"{self.prefix}{index}", cpu.buffer_prototype))
        return b"" if value is None else value.to_bytes()

    def unmark(self, index: int) -> None:
        """Forget block ``index`` (its chunks failed a check): it is computed again."""
        folder = self._folder
        if folder is not None:
            (folder / str(index)).unlink(missing_ok=True)
            return
        sync(self.store.delete(f"{self.prefix}{index}"))

    def done(self, count: int) -> np.ndarray:
        """Boolean mask over ``count`` blocks: True where the block is complete."""
        folder = self._folder
        if folder is not None:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                names = []
        else:

            async def keys() -> list[str]:
                return [key async for key in self.store.list_prefix(self.prefix)]

            names = [key[len(self.prefix) :] for key in sync(keys())]
        mask = np.zeros(count, dtype=bool)
        for name in names:
            if name.isdigit() and int(name) < count:
                mask[int(name)] = True
        return mask


class Status(str, enum.Enum):
    """Where a run into an output stands, as its record says."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETE = "complete"
    #: Every block of the requested region is done; blocks outside it are not.
    PARTIAL = "partial"
    CANCELLED = "cancelled"
    FAILED = "failed"
    #: "running", but by a process that is gone (killed): see `effective_status`.
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Whether the output is done: nothing to resume."""
        return self is Status.COMPLETE


@dataclass(frozen=True)
class Output:
    """A chunkwise output: where its record lives and the arrays that hold data.

    A plain output is one array, which also holds the record. An OME-Zarr output is
    a group holding the record and the NGFF metadata, with one array per pyramid
    level (``0`` the full resolution, which the blocks write). Each array keeps
    the ledger of its own finished pieces beside its chunks.
    """

    record: zarr.Array | zarr.Group
    levels: tuple[zarr.Array, ...]

    @property
    def base(self) -> zarr.Array:
        """The full-resolution array: what the blocks write."""
        return self.levels[0]

    @property
    def multiscale(self) -> bool:
        """Whether this is an OME-Zarr image (a group of levels)."""
        return isinstance(self.record, zarr.Group)

    @property
    def provenance(self) -> dict[str, Any]:
        """The chunkwise record ({} if there is none)."""
        return provenance(self.record)

    def update(self, *, drop: tuple[str, ...] = (), **fields: Any) -> None:
        """Merge ``fields`` into the record, less ``drop``."""
        update_provenance(self.record, drop=drop, **fields)

    @classmethod
    def of(cls, node: zarr.Array | zarr.Group) -> Output:
        """The output whose record is ``node`` (an array, or an OME-Zarr group).

        Raises
        ------
        ChunkwiseError
            If ``node`` is a group that is not a multiscale image.
        """
        if isinstance(node, zarr.Array):
            return cls(node, (node,))
        from chunkwise._ngff import read_multiscale

        image = read_multiscale(node)
        if image is None:
            raise ChunkwiseError("it holds a Zarr group that is not an OME-Zarr image")
        try:
            levels = tuple(node[level.path] for level in image.levels)
        except KeyError as error:
            raise ChunkwiseError(f"its pyramid level {error} is missing") from None
        if not all(isinstance(level, zarr.Array) for level in levels):
            raise ChunkwiseError("a pyramid level of it is not an array")
        return cls(node, levels)


def open_output(out: Any, *, mode: str = "r") -> Output:
    """Open an existing output (a path, store, array or group) as an `Output`.

    Raises
    ------
    ChunkwiseError
        If there is no readable Zarr array or OME-Zarr image there.
    """
    if isinstance(out, zarr.Array | zarr.Group):
        return Output.of(out)
    try:
        node = zarr.open(
            store=out if not isinstance(out, str | os.PathLike) else os.fspath(out),
            mode=mode,
        )
    except Exception as error:
        raise ChunkwiseError(
            f"{out} is not a readable Zarr array or OME-Zarr image: "
            f"{type(error).__name__}"
        ) from None
    return Output.of(node)
