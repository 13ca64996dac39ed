"""The zarr internals chunkwise relies on, in one room: an upgrade touches this file.

zarr-python 3 has no public API yet for these: running a store's coroutine from
synchronous code, and the key of a chunk in its store. Buffers come from the public
``zarr.buffer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zarr.buffer import cpu, default_buffer_prototype
from zarr.core.sync import sync

if TYPE_CHECKING:
    import zarr
    from zarr.core.buffer import BufferPrototype

__all__ = [
    "BufferPrototype",
    "bytes_buffer",
    "cpu",
    "default_buffer_prototype",
    "encode_chunk_key",
    "sync",
]


def bytes_buffer(data: bytes) -> Any:
    """``data`` as a zarr CPU buffer, to store under a key."""
    return cpu.Buffer.from_bytes(data)


def encode_chunk_key(array: zarr.Array, index: tuple[int, ...]) -> str:
    """The key, relative to the array, of the stored chunk (or shard) at ``index``."""
    return array.metadata.encode_chunk_key(index)
