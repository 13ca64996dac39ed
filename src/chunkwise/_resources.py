"""What a run needs: memory for its blocks, disk for its output, cache for its input."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from typing import Any

import numpy as np
import zarr

from chunkwise._keys import chunk_key, stored_units
from chunkwise._output import local_root
from chunkwise._plan import Plan
from chunkwise._source import Source
from chunkwise._zarr_compat import sync
from chunkwise.errors import ChunkwiseError

#: The least a run's chunk cache may hold. On the benchmark's gaussian sigma=2 over
#: 512**3 (64**3 chunks, 128**3 blocks) the live front of cached chunks peaks at
#: 28 MiB, so it fits whole and every chunk is decoded once. On 1024**3 the front
#: needs 86 MiB, most of it chunks decoded for a halo whose own blocks come a whole
#: layer later; capping the cache re-decodes some of those (4096 chunks: 6128
#: decodes with 32 MiB) and keeps memory flat as volumes grow.
RUN_CACHE_FLOOR = 32 * 2**20


def cache_budget(source: Source, plan: Plan, n_jobs: int) -> int:
    """Cache budget for a run: `RUN_CACHE_FLOOR`, or more for large chunks.

    It holds the chunks that ``n_jobs`` blocks in flight touch at once.
    """
    chunks = source.chunks or source.shape
    chunk_bytes = math.prod(chunks) * source.dtype.itemsize
    return max(RUN_CACHE_FLOOR, n_jobs * plan.chunks_touched(chunks) * chunk_bytes)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def _compression(source: Source, samples: int = 16) -> float:
    """Stored over decoded bytes, over a few of the input's chunks (1.0 if unknown).

    Chunks never written count as empty, as they are: sparse data compresses well.
    """
    array = source.array
    if not isinstance(array, zarr.Array):
        return 1.0
    unit = stored_units(array)
    grid = [math.ceil(n / c) for n, c in zip(array.shape, unit, strict=True)]
    count = math.prod(grid)
    picks = sorted({int(i) for i in np.linspace(0, count - 1, min(samples, count))})
    stored = 0
    for flat in picks:
        key = chunk_key(array, np.unravel_index(flat, grid))
        with contextlib.suppress(Exception):
            stored += sync(array.store_path.store.getsize(key))
    decoded = len(picks) * math.prod(unit) * source.dtype.itemsize
    return stored / decoded if decoded else 1.0


def stored_estimate(plan: Plan, source: Source) -> int:
    """Bytes ``plan``'s output takes on disk, compressing as well as the input.

    At best 100x smaller than uncompressed; never larger.
    """
    ratio = _compression(source)
    return int(plan.bytes_written * min(1.0, max(ratio, 0.01)))


def physical_memory() -> int | None:
    """The machine's memory in bytes, None where the system does not say."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def check_resources(plan: Plan, store: Any, n_jobs: int, source: Source) -> None:
    """Refuse a run that cannot fit in memory or on the output's disk.

    Memory: the blocks in flight. Disk: the output's size compressed as well as the
    input is (at best 100x), against the free space where it goes.
    """
    physical = physical_memory()
    if physical:
        need = plan.peak_bytes_per_job * n_jobs
        if need > 0.8 * physical:
            raise ChunkwiseError(
                f"the run needs about {_gib(need)} of memory ({n_jobs} jobs on blocks "
                f"of {plan.block_shape} with their halos), more than this machine's "
                f"{_gib(physical)} allows; use a smaller block or fewer jobs"
            )
    root = local_root(store)
    if root is None:
        return
    estimate = stored_estimate(plan, source)
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if estimate > free:
        raise ChunkwiseError(
            f"the output needs about {_gib(estimate)} ({_gib(plan.bytes_written)} "
            f"uncompressed, compressing like the input), but {folder} has "
            f"{_gib(free)} free; free some space, or pass check_space=False "
            "(--no-space-check) if it compresses better"
        )
