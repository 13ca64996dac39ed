"""joblib's executors on this machine: threads, and loky's processes."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import joblib
from zarr.storage import MemoryStore

from chunkwise._api import check_n_jobs
from chunkwise._executors._malloc import share_malloc_arena
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


class _JoblibExecutor:
    """Jobs through ``joblib.Parallel``, a task at a time, unordered."""

    name: str
    shares_memory: bool
    detached = False
    owns_workers = True

    def __init__(self, n_jobs: int | None) -> None:
        self.workers = check_n_jobs(n_jobs)

    def check_output(self, store: Any) -> None:
        """Any store will do for jobs that share this process's memory."""

    def limit(self, blocks: int) -> None:
        """Start no more threads or processes than there are blocks."""
        self.workers = max(1, min(self.workers, blocks))

    def start(self) -> None:
        """Joblib starts its pool with each run's jobs."""

    def zarr_config(self) -> dict[str, Any]:
        """Zarr's own concurrency fills only the cores the jobs leave idle."""
        return {"async.concurrency": max(1, joblib.cpu_count() // self.workers)}

    def map_unordered(
        self, job: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]
    ) -> Iterator[Any]:
        """``job(*task)`` over ``tasks``, as they finish."""
        parallel = joblib.Parallel(
            n_jobs=self.workers,
            backend=self.name,
            return_as="generator_unordered",
            batch_size=1,
        )
        results = parallel(joblib.delayed(job)(*task) for task in tasks)
        try:
            yield from results
        finally:
            with warnings.catch_warnings():
                # Closing early leaves results unread; joblib warns of each.
                warnings.filterwarnings("ignore", "tasks have been successfully")
                warnings.filterwarnings("ignore", ".*tasks which were still being")
                results.close()

    def close(self) -> None:
        """Joblib's pools end with each run; nothing stays open."""


class ThreadExecutor(_JoblibExecutor):
    """Threads of this process: scipy.ndimage and zarr's codecs release the GIL.

    The first thread run of a process shares glibc's malloc arena between its
    threads (`share_malloc_arena`), for the whole process from then on.
    """

    name = "threading"
    shares_memory = True

    def __init__(self, n_jobs: int | None) -> None:
        super().__init__(n_jobs)
        share_malloc_arena()


class ProcessExecutor(_JoblibExecutor):
    """loky's worker processes on this machine, for functions that hold the GIL."""

    name = "loky"
    shares_memory = False

    def check_output(self, store: Any) -> None:
        """Other processes cannot see this process's in-memory store."""
        if isinstance(store, MemoryStore):
            raise ChunkwiseError(
                "the loky backend runs in other processes and cannot write to an "
                "in-memory store; write to a path"
            )
