"""glibc's allocator settings that a run's large, short-lived buffers want.

Each is a setting of the whole process, made once, when a backend first runs
blocks in it (never on import), and a no-op without glibc's ``mallopt``.
"""

from __future__ import annotations

import ctypes
import functools

# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Where glibc's own adaptive thresholds end up in a process that frees large
#: buffers: blocks up to 32 MiB come from the heap and are reused.
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def _mallopt(*settings: tuple[int, int]) -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for parameter, value in settings:
        mallopt(parameter, value)


@functools.cache
def share_malloc_arena() -> None:
    """Make the threads of this process allocate from one glibc arena (once).

    A run's buffers are often freed by another thread than the one that made them
    (zarr encodes and writes in its own threads), and glibc's per-thread arenas then
    keep the freed memory each to itself; with one arena it is reused (peak memory
    in benchmarks/README.md). napari's threads share it too, from the thread
    backend's first use on; threads that already have an arena keep it.
    """
    _mallopt((M_ARENA_MAX, 1))


@functools.cache
def reuse_block_buffers() -> None:
    """Let freed block buffers be reused rather than returned at once (once).

    dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also
    turns off glibc's adaptive mmap threshold: every buffer over 128 kB is then a
    new mapping, page-faulted in again, for every block. This puts both thresholds
    where glibc's adaptation would take them (page faults and CPU time measured
    in benchmarks/results/dask.md). A worker then keeps up to 64 MiB of freed
    memory at the top of its heap.
    """
    _mallopt((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
