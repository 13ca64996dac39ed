"""Executors: where a run's blocks are computed.

A run hands its blocks to one `Executor`, which runs them unordered and yields each
job's result as it finishes. The run loop (`chunkwise._run`) does the rest: the
ledger, the pyramid, progress records and the run's status, all in the driver.
Adding a backend is one module here plus its registration in `EXECUTORS`; the CLI
and the napari widget read the registry.

========== ==================================================================
threading  joblib threads in this process (scipy.ndimage releases the GIL)
loky       joblib's loky processes on this machine (functions holding the GIL)
dask       a dask.distributed cluster: ``LocalCluster`` or a scheduler address
========== ==================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from chunkwise._executors._joblib import ProcessExecutor, ThreadExecutor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["BACKENDS", "EXECUTORS", "Executor", "open_executor"]


class Executor(Protocol):
    """How a run's jobs are executed: unordered, over blocks, then closed."""

    #: The backend's name, as ``backend=`` and ``--backend`` take it.
    name: str
    #: Jobs run in the driver's process and see its memory (the done mask).
    shares_memory: bool
    #: How many blocks run at once; blocks are sized for it.
    workers: int
    #: Jobs run in processes that are not the driver's children, and may outlive it.
    detached: bool
    #: Jobs run in threads or processes that this run started and ends: lowering
    #: their CPU priority (``nice``) cannot outlast it.
    owns_workers: bool

    def check_output(self, store: Any) -> None:
        """Refuse, in one line, an output store that the jobs cannot write."""

    def limit(self, blocks: int) -> None:
        """Run no more than ``blocks`` jobs at once: the plan has no more."""

    def start(self) -> None:
        """Start what the jobs need (a local cluster), before the output is made."""

    def zarr_config(self) -> dict[str, Any] | None:
        """Zarr settings for the driver and the jobs while the run lasts, if any."""

    def map_unordered(
        self, job: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]
    ) -> Iterator[Any]:
        """``job(*task)`` for each task, yielded as they finish.

        ``tasks`` is consumed lazily, a few ahead of the jobs, so that a run can
        reorder or cancel what is not yet handed out. Closing the iterator stops
        handing out tasks.
        """

    def close(self) -> None:
        """Let go of what the executor started (pools, a local cluster)."""


def _dask_executor(n_jobs: int | None, scheduler: Any) -> Executor:
    from chunkwise._executors._dask import DaskExecutor

    return DaskExecutor(n_jobs, scheduler)


#: Backend name -> factory taking ``(n_jobs, scheduler)``.
EXECUTORS: dict[str, Callable[[int | None, Any], Executor]] = {
    "threading": lambda n_jobs, scheduler: ThreadExecutor(n_jobs),
    "loky": lambda n_jobs, scheduler: ProcessExecutor(n_jobs),
    "dask": _dask_executor,
}
BACKENDS = tuple(EXECUTORS)


def open_executor(
    backend: str, n_jobs: int | None = None, scheduler: Any = None
) -> Executor:
    """The executor for ``backend``, given values `chunkwise.RunOptions` checked.

    Parameters
    ----------
    backend : str
        One of `BACKENDS`.
    n_jobs : int, optional
        Blocks at once; what it counts depends on the backend (see
        `chunkwise.process`).
    scheduler : str or distributed.Client, optional
        With ``dask`` only: a scheduler address, ``"local"``, or a client.
    """
    return EXECUTORS[backend](n_jobs, scheduler)
