"""A byte-bounded LRU cache of decoded input chunks, shared by the threads of a run.

Neighbouring work blocks read overlapping halos. Keeping recently decoded chunks
means each input chunk is decompressed a small, bounded number of times per run
instead of once per block that touches it. Concurrent misses on one chunk decode it
once: later callers wait for the first. A value can be replaced by a smaller one
(`shrink`) once only part of it will be read again.

When full, the cache evicts the value whose next use is furthest away, where the
caller knows it (`shrink` takes the rank of the next use), which is the optimal
policy (Belady's); values without a known next use go least recently used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

__all__ = ["ChunkCache"]


class _Sized(Protocol):
    nbytes: int


K = TypeVar("K", bound="Hashable")
V = TypeVar("V", bound=_Sized)


class ChunkCache(Generic[K, V]):
    """Values up to ``max_bytes``, evicting the furthest next use; counts loads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[K, V] = OrderedDict()
        self._next_use: dict[K, int] = {}
        self._pending: dict[K, Future[V]] = {}
        self._lock = threading.Lock()
        self.nbytes = 0
        self.loads = 0
        self.hits = 0

    def get(
        self,
        key: K,
        load: Callable[[], V],
        usable: Callable[[V], bool] | None = None,
    ) -> V:
        """Return the cached value for ``key``, calling ``load`` once on a miss.

        A cached value for which ``usable`` is false (one shrunk below what this
        caller needs) counts as a miss and is replaced by a fresh load.
        """
        with self._lock:
            value = self._data.get(key)
            if value is not None and (usable is None or usable(value)):
                self._data.move_to_end(key)
                self.hits += 1
                return value
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

    def _insert(self, key: K, value: V) -> None:
        self._pop(key)
        if value.nbytes > self.max_bytes:
            return
        self._data[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes:
            if self._next_use:
                self._pop(max(self._next_use, key=self._eviction_rank))
            else:
                self._pop(next(iter(self._data)))

    def _eviction_rank(self, key: K) -> tuple[int, int]:
        # Large values first: re-reading a small one (a halo face cut from a chunk)
        # costs a whole chunk's decode but frees little. Then the furthest next use.
        return self._data[key].nbytes, self._next_use[key]

    def _pop(self, key: K) -> None:
        self._next_use.pop(key, None)
        value = self._data.pop(key, None)
        if value is not None:
            self.nbytes -= value.nbytes

    def discard(self, key: K) -> None:
        """Drop ``key`` if cached (it will not be read again)."""
        with self._lock:
            self._pop(key)

    def shrink(
        self, key: K, smaller: Callable[[V], V | None], next_use: int | None = None
    ) -> None:
        """Replace the value of ``key`` by ``smaller(value)``; None drops it.

        ``next_use`` ranks when the value is needed next (lower is sooner).
        """
        with self._lock:
            value = self._data.get(key)
            if value is None:
                return
            replacement = smaller(value)
            if replacement is None:
                self._pop(key)
                return
            if next_use is not None:
                self._next_use[key] = next_use
            if replacement is not value:
                self.nbytes += replacement.nbytes - value.nbytes
                self._data[key] = replacement

    def clear(self) -> None:
        """Drop every cached chunk."""
        with self._lock:
            self._data.clear()
            self.nbytes = 0
