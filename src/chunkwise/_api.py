"""The checks that every entry point shares: job counts and regions."""

from __future__ import annotations

import numbers
import operator
from typing import TYPE_CHECKING, Any

import joblib

from chunkwise._geometry import Box
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    pass

__all__ = ["check_n_jobs"]


def check_n_jobs(n_jobs: object) -> int:
    """Return the number of jobs ``n_jobs`` asks for, or raise `ChunkwiseError`.

    None means all cores; a negative count counts back from all cores (-1: all).
    """
    if n_jobs is None:
        return joblib.cpu_count()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise ChunkwiseError(
            f"n_jobs must be a whole number of jobs or None, got {n_jobs!r}"
        )
    if n_jobs == 0:
        raise ChunkwiseError("n_jobs must not be 0 (None or -1: all cores)")
    n_jobs = int(n_jobs)
    return n_jobs if n_jobs > 0 else max(1, joblib.cpu_count() + 1 + n_jobs)


def _region_box(region: Any, shape: tuple[int, ...]) -> tuple[Box, tuple[Any, ...]]:
    """Box for ``region`` (a Box or numpy-style index), and the index to apply after."""
    if isinstance(region, Box):
        if (
            len(region.start) != len(shape)
            or region.clip(shape) != region
            or region.size == 0
        ):
            raise ChunkwiseError(f"region {region} does not fit in shape {shape}")
        return region, ()
    items = region if isinstance(region, tuple) else (region,)
    if len(items) > len(shape):
        raise ChunkwiseError(f"region has {len(items)} indices for {len(shape)} axes")
    items = items + (slice(None),) * (len(shape) - len(items))
    start, stop, after = [], [], []
    for item, n in zip(items, shape, strict=True):
        if isinstance(item, slice):
            a, b, step = item.indices(n)
            if step != 1 or b <= a:
                raise ChunkwiseError(
                    f"region slice {item} must be non-empty with step 1"
                )
            start.append(a)
            stop.append(b)
            after.append(slice(None))
        else:
            try:
                i = operator.index(item)
            except TypeError:
                raise ChunkwiseError(
                    f"region index {item!r} is not an int or slice"
                ) from None
            if not -n <= i < n:
                raise ChunkwiseError(
                    f"region index {i} is out of range for an axis of {n}"
                )
            i %= n
            start.append(i)
            stop.append(i + 1)
            after.append(0)
    return Box(tuple(start), tuple(stop)), tuple(after)
