"""Chunk files read and written directly, below both inputs and outputs.

zarr reads a chunk through its event loop and thread pool: 1.2-1.4 ms for a 64**3
uint8 zstd chunk here, of which reading the file and decompressing take 0.46 ms.
A run decodes thousands of chunks, so where zarr's coding is only "reinterpret the
bytes, (de)compress", chunkwise reads and writes the files itself with the same
numcodecs codec (`chunkwise._source.Source` to read, `chunkwise._store.ChunkWriter`
to write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np
import zarr
import zarr.codecs
from zarr.storage import LocalStore

from chunkwise._keys import chunk_key

if TYPE_CHECKING:
    from chunkwise._geometry import Box

__all__ = ["ChunkFiles"]


def _numcodecs(codec: Any) -> Any:
    """The numcodecs codec that zarr v3's ``codec`` calls, or None if unknown.

    zarr's Zstd, Blosc and Gzip codecs wrap numcodecs. Decoding needs no settings
    (the frame says how it was encoded); encoding here only ever uses zstd and gzip,
    whose settings carry over (`chunkwise._store.ChunkWriter`).
    """
    if isinstance(codec, zarr.codecs.ZstdCodec):
        return numcodecs.Zstd(level=codec.level, checksum=codec.checksum)
    if isinstance(codec, zarr.codecs.GzipCodec):
        return numcodecs.GZip(level=codec.level)
    if isinstance(codec, zarr.codecs.BloscCodec):
        return numcodecs.Blosc()
    return None


@dataclass(frozen=True)
class ChunkFiles:
    """The chunk files of a local array whose coding is just bytes and a compressor.

    zarr reads a chunk through its event loop and thread pool: 1.2-1.4 ms for a
    64**3 uint8 zstd chunk here, of which reading the file and decompressing take
    0.46 ms. A run decodes thousands of chunks, so for the layouts where zarr's
    coding is "reinterpret the bytes, (de)compress" (a directory store, no sharding
    or filters, C order) chunkwise reads, and writes, the files itself with the
    same numcodecs codec. Anything else goes through zarr.
    """

    root: Path
    array: zarr.Array
    #: The numcodecs compressor, None for raw bytes.
    codec: Any
    #: The dtype of the bytes in a file (byte order included).
    stored_dtype: np.dtype

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFiles | None:
        """The chunk files of ``array``, or None if only zarr may touch them."""
        store = array.store_path.store
        if not isinstance(store, LocalStore) or array.shards is not None:
            return None
        metadata = array.metadata
        if metadata.zarr_format == 2:
            if metadata.filters or metadata.order != "C":
                return None
            stored = np.dtype(metadata.dtype.to_native_dtype())
            return cls(store.root, array, metadata.compressor, stored)
        first, *rest = metadata.codecs
        if not isinstance(first, zarr.codecs.BytesCodec) or len(rest) > 1:
            return None
        codec = _numcodecs(rest[0]) if rest else None
        if rest and codec is None:
            return None
        stored = np.dtype(array.dtype)
        if first.endian is not None and stored.itemsize > 1:
            stored = stored.newbyteorder("<" if first.endian.value == "little" else ">")
        return cls(store.root, array, codec, stored)

    def path(self, index: tuple[int, ...]) -> Path:
        """The file of chunk ``index``."""
        return self.root / chunk_key(self.array, index)

    def read(self, index: tuple[int, ...], box: Box) -> np.ndarray | None:
        """Chunk ``index``, clipped to its extent ``box``; None if never written."""
        try:
            raw = self.path(index).read_bytes()
        except FileNotFoundError:
            return None
        if isinstance(self.codec, numcodecs.Blosc):
            # Blosc decodes a cut-off file without complaint: its header says how
            # long the file must be.
            # (Blosc 1 header: bytes 12-16 hold the frame's length, little-endian.)
            cbytes = int.from_bytes(raw[12:16], "little") if len(raw) >= 16 else -1
            if cbytes != len(raw):
                raise ValueError(
                    f"chunk file is {len(raw)} bytes, its Blosc header says {cbytes}"
                )
        if self.codec is not None:
            raw = self.codec.decode(raw)
        data = np.frombuffer(raw, self.stored_dtype).reshape(self.array.chunks)
        data = data[tuple(slice(0, n) for n in box.shape)]
        return data.astype(self.array.dtype, copy=False)
