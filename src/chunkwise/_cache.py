"""A byte-bounded LRU cache of decoded input chunks, shared by the threads of a run.

Neighbouring work blocks read overlapping halos. Keeping recently decoded chunks
means each input chunk is decompressed a small, bounded number of times per run
instead of once per block that touches it. Concurrent misses on one chunk decode it
once: later callers wait for the first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    import numpy as np

__all__ = ["ChunkCache"]

K = TypeVar("K", bound="Hashable")


class ChunkCache(Generic[K]):
    """Least-recently-used chunks up to ``max_bytes``; counts decodes per key."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[K, np.ndarray] = OrderedDict()
        self._pending: dict[K, Future[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.nbytes = 0
        self.loads = 0
        self.hits = 0

    def get(self, key: K, load: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached value for ``key``, calling ``load`` once on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()
        try:
            value = load()
        except BaseException as error:
            with self._lock:
                del self._pending[key]
            future.set_exception(error)
            raise
        with self._lock:
            del self._pending[key]
            self.loads += 1
            self._insert(key, value)
        future.set_result(value)
        return value

    def _insert(self, key: K, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        self._data[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._data.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def discard(self, key: K) -> None:
        """Drop ``key`` if cached (it will not be read again)."""
        with self._lock:
            value = self._data.pop(key, None)
            if value is not None:
                self.nbytes -= value.nbytes

    def clear(self) -> None:
        """Drop every cached chunk."""
        with self._lock:
            self._data.clear()
            self.nbytes = 0
