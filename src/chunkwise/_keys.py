"""Where a zarr array keeps its chunks: the stored unit, its key, and fill values.

A sharded array stores one key per shard, others one per chunk. Reading, writing,
verifying and listing an array all map chunk indices to these keys; they do it
here, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chunkwise._zarr_compat import encode_chunk_key

if TYPE_CHECKING:
    import zarr

__all__ = ["all_fill", "chunk_key", "stored_index", "stored_units"]


def stored_units(array: zarr.Array) -> tuple[int, ...]:
    """The shape of what is stored as one key: a shard, or else a chunk."""
    return tuple(array.shards or array.chunks)


def stored_index(array: zarr.Array, index: tuple[int, ...]) -> tuple[int, ...]:
    """The index of the stored unit (shard or chunk) that holds chunk ``index``."""
    if array.shards is None:
        return tuple(index)
    ratio = (s // c for s, c in zip(array.shards, array.chunks, strict=True))
    return tuple(i // r for i, r in zip(index, ratio, strict=True))


def chunk_key(array: zarr.Array, stored: tuple[int, ...]) -> str:
    """The store key of stored unit ``stored``, under the array's own path."""
    path = array.store_path.path
    key = encode_chunk_key(array, tuple(int(i) for i in stored))
    return f"{path}/{key}" if path else key


def all_fill(part: np.ndarray, fill: np.ndarray) -> bool:
    """Whether every value of ``part`` is the fill value (NaN matching NaN)."""
    if part.dtype.kind in "fc" and np.isnan(fill):
        return bool(np.isnan(part).all())
    return not (part != fill).any()
