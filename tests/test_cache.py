"""The chunk cache: one load per key under concurrency, and what it evicts."""

from __future__ import annotations

import threading
import time

import numpy as np

from chunkwise._cache import ChunkCache


def _loader(nbytes: int, calls: list[int]):
    def load() -> np.ndarray:
        calls.append(nbytes)
        time.sleep(0.01)
        return np.zeros(nbytes, np.uint8)

    return load


def test_concurrent_misses_load_once():
    cache: ChunkCache[str, np.ndarray] = ChunkCache(1000)
    calls: list[int] = []
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.get("a", _loader(10, calls)))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [10]
    assert all(r is results[0] for r in results)
    assert cache.loads == 1


def test_eviction_takes_the_furthest_next_use_and_large_values_first():
    cache: ChunkCache[str, np.ndarray] = ChunkCache(100)
    calls: list[int] = []
    for key in ("soon", "late", "face"):
        cache.get(key, _loader(40 if key != "face" else 10, calls))
    # "late" and "soon" are whole chunks needed by blocks 9 and 2; "face" is a thin
    # cut needed last, by block 12.
    cache.shrink("soon", lambda v: v, next_use=2)
    cache.shrink("late", lambda v: v, next_use=9)
    cache.shrink("face", lambda v: v, next_use=12)
    cache.get("new", _loader(40, calls))
    assert cache.nbytes == 90
    cache.get("soon", _loader(40, calls))
    cache.get("face", _loader(10, calls))
    assert cache.loads == 4  # neither "soon" nor "face" was evicted...
    cache.get("late", _loader(40, calls))
    assert cache.loads == 5  # ...but "late" was


def test_without_next_uses_the_least_recently_used_goes():
    cache: ChunkCache[str, np.ndarray] = ChunkCache(100)
    calls: list[int] = []
    for key in "abc":
        cache.get(key, _loader(40, calls))
    cache.get("b", _loader(40, calls))
    cache.get("a", _loader(40, calls))
    assert cache.loads == 4 and cache.nbytes == 80  # "a" was oldest: reloaded


def test_shrink_replaces_drops_and_counts_bytes():
    cache: ChunkCache[str, np.ndarray] = ChunkCache(100)
    cache.get("a", _loader(40, []))
    cache.shrink("a", lambda v: v[:10])
    assert cache.nbytes == 10
    reloads: list[int] = []
    assert (
        cache.get("a", _loader(40, reloads), usable=lambda v: v.size >= 40).size == 40
    )
    assert reloads == [40] and cache.nbytes == 40
    cache.shrink("a", lambda v: None)
    assert cache.nbytes == 0
    cache.shrink("absent", lambda v: None)  # nothing cached: nothing happens
