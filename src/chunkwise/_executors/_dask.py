"""A dask.distributed cluster: blocks run as tasks, submitted a few at a time.

Built on distributed's own ``Client.submit`` and ``as_completed``, not a task graph
and not joblib's dask backend (its exceptions arrive wrapped, so ``retries`` cannot
tell them apart). Workers read the input and write the output chunks to the store
themselves; a task returns only the block's small record, and the driver alone
writes the ledger, once the block's chunks are written.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import pickle
import threading
import time
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
from zarr.storage import MemoryStore

from chunkwise._api import check_n_jobs
from chunkwise._executors._malloc import reuse_block_buffers
from chunkwise.errors import BlockError, ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: Tasks in flight per worker thread: enough to keep every thread busy while the
#: driver records the last results, few enough that a plan of a million blocks
#: never sits on the scheduler.
IN_FLIGHT = 2
#: How often a task is tried again after an I/O error (a flaky object store). A
#: worker that dies is the scheduler's business: its tasks go to other workers.
RETRIES = 2
#: How long one task should take. Each task costs the scheduler, the driver and a
#: worker a few milliseconds however small its block (benchmarks/results/dask.md):
#: blocks faster than this go several to a task, sized by the blocks timed so far.
TASK_SECONDS = 0.1
#: At most this many blocks to a task: what a killed worker or a cancel loses.
BLOCKS_PER_TASK = 64


@dataclass(frozen=True)
class _Failed:
    """A block's computation failed: said once, never retried."""

    message: str


#: Per worker process: the job of the latest runs, by run token, so that a run's
#: tasks on one worker share one input cache (halos decoded once).
_JOBS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_JOBS_LOCK = threading.Lock()
#: distributed's setting of its workers' glibc trim threshold (unset by chunkwise).
_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
#: How many sent messages each of distributed's connections keeps for debugging
#: (1000 by default): every task's submission holds its job, so the driver grew by
#: megabytes over a long run before the log was full (benchmarks/results/dask.md).
_MESSAGE_LOG = "distributed.admin.low-level-log-length"
#: A job pickled larger than this (an in-memory input) goes to each worker once.
SCATTER_BYTES = 2**20


def _run_blocks(
    token: str, job: Callable[..., Any], tasks: list[tuple[Any, ...]]
) -> tuple[list[Any], float]:
    """Run a task's blocks on a worker: their records, and the seconds they took.

    The operation's own errors are the same on every try, so they come back as a
    value, after the records of the blocks done before; I/O errors are raised, and
    dask retries the task (its blocks are written again, to the same values).
    """
    reuse_block_buffers()
    with _JOBS_LOCK:
        job = _JOBS.setdefault(token, job)
        _JOBS.move_to_end(token)
        while len(_JOBS) > 2:
            _JOBS.popitem(last=False)
    began = time.perf_counter()
    results: list[Any] = []
    for task in tasks:
        try:
            results.append(job(*task))
        except BlockError as error:
            if _cause(error, OSError):
                raise
            results.append(_Failed(str(error)))
            break
    return results, time.perf_counter() - began


def _cause(error: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``error`` or an error it was raised from is a ``kind``."""
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__
    return False


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ChunkwiseError(
            "the dask backend needs dask.distributed: pip install 'distributed'"
        ) from None
    return distributed


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class _Sizing:
    """How many blocks go to a task: enough for `TASK_SECONDS`, by those timed."""

    def __init__(self) -> None:
        self.per_task = 1
        self._blocks = 0
        self._seconds = 0.0

    def timed(self, blocks: int, seconds: float) -> None:
        """Count ``blocks`` that took ``seconds`` on a worker."""
        self._blocks += blocks
        self._seconds += seconds
        if self._blocks and self._seconds > 0:
            wanted = TASK_SECONDS * self._blocks / self._seconds
            self.per_task = max(1, min(BLOCKS_PER_TASK, int(wanted)))
        elif self._blocks:
            self.per_task = BLOCKS_PER_TASK


class DaskConnection:
    """A client of a dask scheduler, and the local cluster started for it, if any.

    Opening one may take seconds: a ``LocalCluster`` starts its worker processes,
    and an unreachable address takes dask's connect timeout. `DaskExecutor` opens
    one for a run given an address; the napari widget opens one off its main
    thread, keeps it for later runs and gives its ``client`` to a run.

    Parameters
    ----------
    scheduler : str
        ``"local"``: a ``LocalCluster`` on 127.0.0.1 of ``n_jobs`` single-threaded
        worker processes; else a scheduler address such as ``tcp://10.0.0.5:8786``.
    n_jobs : int, optional
        The local cluster's worker processes (None or -1: one per core).

    Raises
    ------
    ChunkwiseError
        dask.distributed is missing, or the scheduler cannot be reached.
    """

    def __init__(self, scheduler: str, n_jobs: int | None = None) -> None:
        distributed = _distributed()
        self.local = scheduler == "local"
        self._owned: list[Any] = []
        if self.local:
            workers = check_n_jobs(n_jobs)
            try:
                # distributed makes its workers return freed memory to the system
                # at once (MALLOC_TRIM_THRESHOLD_=65536): every block's buffers
                # are then new mappings, page-faulted in again, and the Gaussian
                # benchmark took about 1.3x as long (benchmarks/results/dask.md).
                # The thread backend runs with glibc's own thresholds; so do these.
                with dask.config.set({_TRIM: None, _MESSAGE_LOG: 0}):
                    cluster = distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        # Any free port on the loopback: distributed's HTTP server
                        # starts even without a dashboard, on 8787 by default, where
                        # another cluster may be.
                        dashboard_address="127.0.0.1:0",
                        # The workers' own warnings (a task cancelled with the run)
                        # are not the user's business; errors show, unless the
                        # caller (the command line) silenced distributed further.
                        silence_logs=max(
                            logging.ERROR,
                            logging.getLogger("distributed").getEffectiveLevel(),
                        ),
                    )
            except Exception as error:
                # distributed says RuntimeError("Cluster failed to start: ...").
                raise ChunkwiseError(
                    f"could not start a local dask cluster of {workers} worker "
                    f"processes: {_one_line(error)}"
                ) from None
            self._owned.append(cluster)
            self.address = "local"
        else:
            self.address = scheduler
            cluster = scheduler
        try:
            # Not the default client: dask arrays elsewhere in the process (napari's
            # layers) keep computing where they did.
            with dask.config.set({_MESSAGE_LOG: 0}):
                self.client = distributed.Client(cluster, set_as_default=False)
        except (OSError, ValueError, TypeError) as error:
            self.close()
            raise ChunkwiseError(
                f"cannot reach the dask scheduler at {self.address}: {_one_line(error)}"
            ) from None
        self._owned.insert(0, self.client)

    def wait_for_workers(self) -> None:
        """Wait until the scheduler has a worker, or raise a one-line error."""
        _wait_for_workers(self.client, self.address)

    @property
    def alive(self) -> bool:
        """Whether the client is still connected to its scheduler."""
        return self.client.status == "running"

    def close(self) -> None:
        """Close the client, then the local cluster (its worker processes end)."""
        for thing in self._owned:
            with contextlib.suppress(Exception):
                thing.close()
        self._owned.clear()


def _wait_for_workers(client: Any, address: str) -> None:
    # As long as reaching the scheduler may take: dask's connect timeout
    # (distributed.comm.timeouts.connect, 30 s unless set).
    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as error:
        raise ChunkwiseError(
            f"the dask scheduler at {address} has no workers ({_one_line(error)})"
        ) from None


class DaskExecutor:
    """Blocks as tasks on a dask.distributed cluster.

    ``scheduler`` is a ``distributed.Client`` (left open at the end), a scheduler
    address such as ``tcp://10.0.0.5:8786``, or ``"local"``: a ``LocalCluster`` on
    127.0.0.1 with ``n_jobs`` single-threaded worker processes, closed at the end
    (see `DaskConnection`). None: dask's ``scheduler-address`` setting
    (``DASK_SCHEDULER_ADDRESS``), else ``"local"``.
    On a cluster, ``n_jobs`` is the number of blocks at once, which may exceed
    the threads it has now (a cluster that adapts; None or -1: every worker
    thread; -2: all but one).
    """

    name = "dask"
    shares_memory = False
    detached = True

    @property
    def owns_workers(self) -> bool:
        """Only a local cluster's workers are this run's own."""
        return self.address == "local"

    def __init__(self, n_jobs: int | None, scheduler: Any) -> None:
        distributed = _distributed()
        self._owned: list[DaskConnection] = []
        if scheduler is None:
            # As distributed.Client() does: dask's setting, else a local cluster.
            scheduler = dask.config.get("scheduler-address", None) or "local"
        self.client: Any = None
        if isinstance(scheduler, distributed.Client):
            self.client = scheduler
            self.address = str(scheduler.scheduler.address)
        elif scheduler == "local":
            # Started when the blocks start: planning needs only its size.
            self.address = "local"
            self.workers = check_n_jobs(n_jobs)
            return
        elif isinstance(scheduler, str) and scheduler.strip():
            connection = DaskConnection(scheduler.strip())
            self._owned.append(connection)
            self.client, self.address = connection.client, connection.address
        else:
            raise ChunkwiseError(
                "the dask backend needs a scheduler: an address such as "
                "tcp://host:8786, 'local' for a cluster on this machine, or a "
                f"distributed.Client; got {scheduler!r}"
            )
        try:
            self.workers = self._slots(n_jobs)
        except BaseException:
            self.close()
            raise

    def _slots(self, n_jobs: int | None) -> int:
        """Blocks at once: every worker thread, or ``n_jobs`` of them."""
        _wait_for_workers(self.client, self.address)
        threads = sum(self.client.nthreads().values())
        if n_jobs is None:
            return threads
        return n_jobs if n_jobs > 0 else max(1, threads + 1 + n_jobs)

    def check_output(self, store: Any) -> None:
        """Workers are other processes: they cannot see an in-memory store."""
        if isinstance(store, MemoryStore):
            raise ChunkwiseError(
                "the dask backend runs on workers and cannot write to an in-memory "
                "store; write to a path every worker sees, or a URL"
            )

    def limit(self, blocks: int) -> None:
        """Fewer blocks than slots: the submission bound is lower, nothing else."""
        self.workers = max(1, min(self.workers, blocks))

    def start(self) -> None:
        """Start the local cluster, sized for the run's plan (a no-op otherwise)."""
        if self.client is None:
            connection = DaskConnection("local", self.workers)
            self._owned.append(connection)
            self.client = connection.client

    def zarr_config(self) -> dict[str, Any] | None:
        """Workers keep zarr's own settings: their cores are their own."""
        return None

    def map_unordered(
        self, job: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]
    ) -> Iterator[Any]:
        """``job(*task)`` on the workers, at most `IN_FLIGHT` per slot at once."""
        distributed = _distributed()
        self.start()
        token = uuid.uuid4().hex
        prefix = f"chunkwise-{token[:8]}-block"
        # A job is a few kB (the plan, where the input and output are): each task
        # carries it, so any worker, a restarted one too, can run any block. One
        # holding an in-memory input goes to every worker once instead.
        shared: Any = job
        if len(pickle.dumps(job)) > SCATTER_BYTES:
            [shared] = self.client.scatter([job], broadcast=True, hash=False)
        pending = iter(tasks)
        # The driver takes every task finished since it last looked at once, and
        # gathers their results itself: gathered on the client's loop instead
        # (``with_results``), a scheduler that dies mid-gather logs a traceback.
        running = distributed.as_completed(loop=self.client.loop, raise_errors=False)
        submitted: set[Any] = set()
        sizing = _Sizing()

        def submit(count: int) -> None:
            groups = [
                group
                for group in (
                    list(itertools.islice(pending, sizing.per_task))
                    for _ in range(count)
                )
                if group
            ]
            if not groups:
                return
            futures = self.client.map(
                _run_blocks,
                [token] * len(groups),
                [shared] * len(groups),
                groups,
                key=[f"{prefix}-{group[0][0]}" for group in groups],
                pure=False,
                retries=RETRIES,
            )
            submitted.update(futures)
            running.update(futures)

        submit(IN_FLIGHT * self.workers)
        try:
            for finished in running.batches():
                results = []
                for future, (records, seconds) in zip(
                    finished, self._gather(finished), strict=True
                ):
                    submitted.discard(future)
                    future.release()
                    sizing.timed(len(records), seconds)
                    results.extend(records)
                submit(len(finished))
                failed = [record for record in results if isinstance(record, _Failed)]
                yield from (r for r in results if not isinstance(r, _Failed))
                if failed:
                    raise BlockError(failed[0].message)
        finally:
            if submitted:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(submitted))
            if isinstance(shared, distributed.Future):
                with contextlib.suppress(Exception):
                    shared.release()

    def _gather(self, finished: list[Any]) -> list[Any]:
        """Finished tasks' results, or the one-line error they end the run with."""
        distributed = _distributed()
        for future in finished:
            if future.cancelled():
                # The scheduler is gone: its futures are cancelled.
                raise BlockError(self._lost(CancelledError(future.key)))
            if future.status == "error":
                error = future.exception()
                if isinstance(error, distributed.KilledWorker):
                    raise BlockError(
                        f"a block killed every worker it ran on: {_one_line(error)}"
                    ) from None
                raise error  # a task's own error, as it was raised
        try:
            return self.client.gather(finished)
        except (CancelledError, OSError) as error:
            # The scheduler went while the results came: its comms are closed.
            raise BlockError(self._lost(error)) from None

    def _lost(self, error: BaseException) -> str:
        return (
            f"lost the dask scheduler at {self.address} ({_one_line(error)}); the "
            "finished blocks are kept: resume to finish"
        )

    def close(self) -> None:
        """Close the client and cluster this executor started, not a given client."""
        for connection in self._owned:
            connection.close()
        self._owned.clear()
