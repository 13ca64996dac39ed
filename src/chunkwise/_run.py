"""Running a plan: joblib execution, progress records, cancellation and resume.

`iter_process` returns a `Run`: the output exists as soon as it returns, and iterating
the run executes the blocks and yields one `BlockDone` per finished block. `process`
drains a run. There is one implementation; the CLI and the napari plugin only
consume its records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import zarr

from chunkwise._checks import (
    check_existing,
    check_fingerprint,
    check_not_input,
    check_recipe,
    output_format,
)
from chunkwise._executors import BACKENDS, Executor, open_executor
from chunkwise._fingerprint import list_input
from chunkwise._geometry import Box, block_box
from chunkwise._job import Job, where_is
from chunkwise._ngff import check_placement
from chunkwise._options import RunOptions
from chunkwise._order import BlockOrder
from chunkwise._output import (
    Claim,
    Existing,
    Fence,
    Found,
    claim_output,
    inspect_output,
    local_root,
    new_run_id,
    process_identity,
    reason,
)
from chunkwise._plan import Plan, make_plan
from chunkwise._prepare import (
    is_labels,
    make_recipe,
    open_output_for,
    output_image,
    pyramid_plan,
)
from chunkwise._pyramid import InBlock, Pyramid, method_for
from chunkwise._remote import check_storage_options
from chunkwise._resources import cache_budget, check_resources
from chunkwise._selection import priority_boxes, wanted_blocks
from chunkwise._source import Source, open_source, with_axes
from chunkwise._store import (
    ChunkWriter,
    Ledger,
    Output,
    Status,
    check_output_location,
    now,
    output_store,
    provenance,
)
from chunkwise._verify import check_blocks, check_level, forget_block, remove_partials
from chunkwise.errors import BlockError, Cancelled, ChunkwiseError
from chunkwise.ops._axes import fit_axes
from chunkwise.ops._catalogue import as_operation

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from chunkwise.ops import Operation

__all__ = [
    "BACKENDS",
    "BlockDone",
    "CancelToken",
    "Run",
    "iter_process",
    "plan",
    "process",
]


@dataclass(frozen=True, slots=True)
class BlockDone:
    """Progress record: block ``index`` wrote output ``box`` in ``seconds``.

    ``done`` counts complete blocks so far (resumed ones included) out of ``total``.
    ``levels`` lists the chunks of an OME-Zarr output's coarser levels built since
    the previous record, as ``(level, box)`` in that level's voxels; those built
    after the last block are in `Run.levels_built` once the run ends.
    """

    index: int
    box: Box
    seconds: float
    done: int
    total: int
    levels: tuple[tuple[int, Box], ...] = ()


class CancelToken:
    """Ask a run to stop: no new block starts; blocks in flight finish and are kept."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Request cancellation (thread-safe)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self._event.is_set()


def _in_event_loop() -> bool:
    """Whether this thread is running an asyncio event loop (zarr's, say)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _let_go(*releases: Any) -> None:
    """Call each of ``releases``, even when one fails."""
    try:
        releases[0]()
    finally:
        if releases[1:]:
            _let_go(*releases[1:])


class Run:
    """A run in progress: iterate it to execute blocks and receive `BlockDone` records.

    The run holds its output's lock from creation until it ends, is closed, or is
    garbage-collected.

    Attributes
    ----------
    output : zarr.Array
        The output array, created (or reopened for resume) before any block runs;
        for an OME-Zarr output, its full-resolution level.
    target : Output
        The whole output: its record, and its pyramid levels for OME-Zarr.
    plan : Plan
        The blocks and the output layout.
    cancel_token : CancelToken
        Cancels the run when set; see `cancel`.
    """

    def __init__(
        self,
        source: Source,
        plan: Plan,
        output: Output | zarr.Array,
        *,
        executor: Executor,
        cancel: CancelToken,
        nice: int = 0,
        claim: Claim | None = None,
        resumed: bool = False,
        wanted: np.ndarray | None = None,
        labels: bool = False,
        priority: Sequence[Box] = (),
    ) -> None:
        self.source = source
        self.plan = plan
        # The order blocks are handed out in; the viewer moves its focus mid-run.
        self._order = BlockOrder(plan, priority)
        self.target = output if isinstance(output, Output) else Output.of(output)
        self.output = self.target.base
        #: Which blocks this run computes (a region run); None: all of them.
        self.wanted = wanted
        self._labels = labels
        self._damaged: list[Box] = []
        #: Chunks of coarser levels built after the last `BlockDone`, as
        #: ``(level, box)``, once the run has ended.
        self.levels_built: tuple[tuple[int, Box], ...] = ()
        self.cancel_token = cancel
        self.run_id = claim.lock.run_id if claim and claim.lock else new_run_id()
        self.executor = executor
        self._nice = nice
        self._claim = claim or Claim(None, None)
        self._resumed = resumed
        # However the run ends, even unstarted and dropped, its lock is let go and
        # its executor closed.
        self._release = weakref.finalize(
            self, _let_go, self._claim.release, executor.close
        )
        self._ledger = Ledger.of(self.output)
        self._done_mask = self._ledger.done(len(plan))
        #: Blocks already complete when the run started (from an earlier run); on
        #: resume, lowered once iterating has checked them.
        self.done_at_start = self._count(self._done_mask)
        #: The blocks this run ends with done, when it finishes.
        self.total = len(plan) if wanted is None else int(wanted.sum())
        # Made on first use: a generator holding the run would keep it, and its
        # lock, alive until a garbage collection.
        self._records: Iterator[BlockDone] | None = None

    def cancel(self) -> None:
        """Stop dispatching blocks; the run then raises `Cancelled`."""
        self.cancel_token.cancel()

    def prioritise(self, *regions: Any) -> None:
        """Compute the blocks over ``regions`` of the input next, nearest first.

        Thread-safe: call it while another thread iterates the run, say when a
        viewer's slider moves. The blocks not yet handed to a job follow the new
        order: those over the first region first (the field of view), then over
        the next (the plane it lies on), then the rest by distance; results are
        the same in any order. No regions: index order.

        Parameters
        ----------
        *regions : Box, tuple of slice or str
            In input voxels, as the ``region`` of `process`.

        Raises
        ------
        ChunkwiseError
            A region that does not fit the input or covers no output voxel.

        Examples
        --------
        >>> import numpy as np
        >>> from chunkwise import ops
        >>> run = iter_process(np.zeros((64, 64, 64), np.uint8), ops.gaussian(1),
        ...                    block=(16, 64, 64), chunks=(16, 64, 64), n_jobs=1)
        >>> run.prioritise("40:41,:,:")
        >>> next(run).index
        2
        """
        self._order.prioritise(priority_boxes(self.plan, self.source, list(regions)))

    def __iter__(self) -> Run:
        return self

    def __next__(self) -> BlockDone:
        if self._records is None:
            self._records = self._execute()
        return next(self._records)

    def close(self) -> None:
        """Stop the run now; the output is marked cancelled if it was not finished."""
        if self._records is not None:
            self._records.close()
        self._release()

    def _count(self, mask: np.ndarray) -> int:
        """How many of the wanted blocks ``mask`` says."""
        return int((mask if self.wanted is None else mask & self.wanted).sum())

    def _tasks(self, done: Any) -> Iterator[Any]:
        todo = ~done if self.wanted is None else self.wanted & ~done
        for task in self._order.iter_blocks(todo):
            if self.cancel_token.cancelled:
                return
            yield task

    def _check_resumed(self) -> None:
        """Before trusting an earlier run's blocks, decode their chunks.

        A block whose chunk is truncated, damaged or unreadable is forgotten and
        computed again; stale ``.partial`` files of a killed writer are removed.
        """
        root = local_root(self.output.store_path.store)
        if root is not None:
            remove_partials(root)
        trusted = np.flatnonzero(self._done_mask)
        # Decoded here, in the driver, whatever the backend.
        jobs = max(1, min(self.executor.workers, joblib.cpu_count()))
        damaged = check_blocks(self.output, self.plan, trusted, jobs)
        for index in damaged:
            # Its chunks go too: zarr reads a shard before writing into it.
            box = self.plan.block(index).box
            forget_block(self.output, box)
            self._ledger.unmark(index)
            self._done_mask[index] = False
            self._damaged.append(box)
        for level in self.target.levels[1:]:
            # A damaged chunk of a level is built again from the level below.
            for problem in check_level(level, jobs):
                forget_block(level, block_box(problem.block, level.shape, level.chunks))
                Ledger.of(level).unmark(problem.block)
        self.done_at_start = self._count(self._done_mask)

    def _start(self) -> None:
        recipe = self.target.provenance.get("recipe", {})
        fields: dict[str, Any] = {
            # What the run record says, over any hand edit of the summary fields.
            "operation": recipe.get("operation"),
            "input": recipe.get("input"),
            "status": Status.RUNNING.value,
            "started": now(),
            "finished": None,
            "run_id": self.run_id,
            "process": process_identity(),
        }
        # Listing a large input takes a while (about 8 us a file): it happens here,
        # in the thread that iterates the run, not in the caller of iter_process.
        listing = list_input(self.source.array)
        if listing is not None:
            if self._resumed:
                check_fingerprint(self.target, listing.summary())
            fields["input_fingerprint"] = listing.summary()
            # The run's own view: previews share the source and must not see it.
            self.source = dataclasses.replace(self.source, listing=listing)
        try:
            if self._resumed:
                self._check_resumed()
            self.target.update(drop=("error",), **fields)
        except OSError as error:
            raise BlockError(
                "the output could not be updated: "
                f"{reason(error, where_is(self.output))}"
            ) from None

    def _mark(self, index: int, written: bytes) -> None:
        try:
            self._ledger.mark(index, written)
        except OSError as error:
            raise BlockError(
                f"block {index} could not be recorded in the ledger: "
                f"{reason(error, where_is(self.output))}"
            ) from None

    def _pyramid(self, fence: Fence | None) -> Pyramid | None:
        """The builder of an OME-Zarr output's coarser levels, caught up.

        It starts from the blocks an earlier run finished.
        """
        if len(self.target.levels) < 2:
            return None
        pyramid = Pyramid(
            self.target.levels, method=method_for(self._labels), fence=fence
        )
        for box in self._damaged:
            pyramid.forget(box)
        pyramid.resume(
            self.plan.block(int(i)).box for i in np.flatnonzero(self._done_mask)
        )
        return pyramid

    def _execute(self) -> Iterator[BlockDone]:
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        total = self.total
        done = self.done_at_start
        executor = self.executor
        config = executor.zarr_config()
        fence = self._claim.fence()
        try:
            pyramid = self._pyramid(fence)
        except OSError as error:
            self._finish(Status.FAILED, done, str(error), failing=True)
            raise BlockError(
                "the output's levels could not be read: "
                f"{reason(error, where_is(self.output))}"
            ) from None
        if fence is not None and executor.detached:
            # Its workers are not this process's children: no watchdog there.
            fence = dataclasses.replace(fence, driver=None)
        job = Job(
            self.source,
            self.plan,
            self.output,
            None if executor.shares_memory else config,
            self._done_mask.copy() if executor.shares_memory else None,
            self.plan.shares_input(self.source.chunks or self.source.shape),
            # Another's cluster keeps its worker threads: never lower them.
            self._nice if executor.owns_workers else 0,
            threading.get_native_id(),
            ChunkWriter.of(self.output, fence),
            fence,
            None
            if pyramid is None
            else InBlock.of(self.target.levels, pyramid.method, fence),
        )
        results = executor.map_unordered(job, self._tasks(self._done_mask))
        status, error_text, failure = Status.FAILED, None, None
        try:
            with zarr.config.set(config or {}):
                for index, box, seconds, written, built in results:
                    if pyramid is not None:
                        pyramid.record(built)
                    self._mark(index, written)
                    self._done_mask[index] = True
                    if pyramid is not None:
                        pyramid.landed(box)
                    # The old output stays set aside until a block is written: if
                    # the run fails at once, it is still there.
                    self._claim.purge()
                    done += 1
                    levels = () if pyramid is None else pyramid.drain()
                    yield BlockDone(index, box, seconds, done, total, levels)
                if pyramid is not None and done == total:
                    pyramid.finish()
                    self.levels_built = pyramid.drain()
            status = self._ending(done, pyramid)
        except (GeneratorExit, KeyboardInterrupt):
            status = Status.CANCELLED
            raise
        except BlockError as error:
            error_text = failure = str(error)
            if self._claim.trash and done == self.done_at_start:
                kept = ", ".join(map(str, self._claim.trash))
                raise BlockError(
                    f"{error}; the output it replaced is kept at {kept} until the "
                    "next run there"
                ) from error
            raise
        except Exception as error:
            error_text = f"{type(error).__name__}: {error}"
            failure = f"the run failed: {error_text}"
            raise BlockError(failure) from error
        except OSError as error:
            # Building a pyramid level: the blocks are fine, the level is not.
            error_text = failure = (
                "a pyramid level could not be written: "
                f"{reason(error, where_is(self.output))}"
            )
            raise BlockError(failure) from None
        finally:
            results.close()
            if pyramid is not None:
                pyramid.close()
            self._finish(status, done, error_text, failing=failure is not None)
        if status is Status.CANCELLED:
            raise Cancelled(
                f"cancelled after {done} of {total} blocks; resume to finish"
            )

    def _ending(self, done: int, pyramid: Pyramid | None) -> Status:
        """The status of a run whose blocks stopped coming after ``done``."""
        if done < self.total:
            return Status.CANCELLED
        if pyramid is not None and self._done_mask.all() and not pyramid.complete:
            raise BlockError("the pyramid is missing chunks after every block was done")
        return Status.COMPLETE if self._done_mask.all() else Status.PARTIAL

    def _finish(
        self, status: Status, done: int, error: str | None, *, failing: bool
    ) -> None:
        """Record how the run ended and let go of the output.

        Never masks the error that ended the run: if the status cannot be written
        then, the run's process record lets `chunkwise info` tell it was
        interrupted.
        """
        if _in_event_loop():
            # A run dropped mid-way can be collected in zarr's own event-loop
            # thread, where zarr cannot be called: record its end from another.
            threading.Thread(
                target=self._finish,
                args=(status, done, error),
                kwargs={"failing": failing},
                daemon=True,
            ).start()
            return
        try:
            self.target.update(
                status=Status(status).value,
                finished=now(),
                blocks_done=int(self._done_mask.sum()),
                **({"error": error} if error else {}),
            )
        except OSError as problem:
            if not failing and status in (Status.COMPLETE, Status.PARTIAL):
                self._release()
                raise BlockError(
                    "every block was written, but the output's status could not be "
                    f"recorded: {reason(problem, where_is(self.output))}"
                ) from None
        finally:
            if done > self.done_at_start:
                self._claim.purge()
            self._release()


def iter_process(
    source: Any,
    op: Operation,
    out: Any = None,
    options: RunOptions | None = None,
    *,
    cancel: CancelToken | None = None,
    priority: Any = None,
    **settings: Any,
) -> Run:
    """Start processing ``source`` with ``op`` into ``out``, block by block.

    Everything is validated and the output is created (and locked) before this
    returns; iterate the returned `Run` to compute the blocks. Each finished block
    yields a `BlockDone` record. See `process` for the parameters; besides them:

    Parameters
    ----------
    priority : Box, tuple of slice, str or list of them, optional
        Compute the blocks over this region of the input (in input voxels, as
        ``region``) first, nearest its centre first; with a list, those over the
        first region, then over the next, and so on (a viewer's field of view, then
        its plane). The rest follow by distance. `Run.prioritise` changes it
        mid-run. The result is the same in any order. Default: index order.

    Returns
    -------
    Run
        An iterator of `BlockDone` records, with the ``output`` array and ``plan``.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> run = iter_process(np.zeros((64, 64, 64), np.uint8), ops.gaussian(1), n_jobs=1)
    >>> [record.done for record in run][-1] == len(run.plan)
    True
    """
    op = as_operation(op)
    options = RunOptions.of(options, **settings)
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise ChunkwiseError(
            f"cancel must be a chunkwise.CancelToken, got {type(cancel).__name__}"
        )
    format = output_format(options.format, out, options.levels)
    storage = check_storage_options(options.storage_options, source, out)
    opened, op = _open_input(source, op, options, storage)
    store = output_store(out, storage)
    check_output_location(store, opened)
    found = inspect_output(store)
    check_existing(
        found, overwrite=options.overwrite, resume=options.resume, force=options.force
    )
    check_not_input(opened, found)
    executor = open_executor(options.backend, options.n_jobs, options.scheduler)
    try:
        executor.check_output(store)
        return _begin(
            opened,
            op,
            store,
            found,
            executor,
            options.replace(format=format),
            cancel=cancel or CancelToken(),
            priority=priority,
        )
    except BaseException:
        executor.close()
        raise


def _open_input(
    source: Any, op: Operation, options: RunOptions, storage: dict[str, Any] | None
) -> tuple[Source, Operation]:
    """The input as ``options`` say to read it, and ``op`` fitted to its axes."""
    opened = open_source(
        source,
        cache_bytes=options.cache_bytes,
        missing=options.missing,
        timeout=options.timeout,
        level=options.level,
        storage_options=storage,
    )
    opened = with_axes(opened, options.axes)
    return opened, fit_axes(op, opened.spatial, len(opened.shape))


def _begin(
    opened: Source,
    op: Operation,
    store: Any,
    found: Existing,
    executor: Executor,
    options: RunOptions,
    *,
    cancel: CancelToken,
    priority: Any,
) -> Run:
    """Plan, lay out and create the output, once the executor says its jobs."""
    resuming = options.resume and found.found is Found.CHUNKWISE
    # On resume, what was not given is taken from the output being finished, so that
    # resuming with another job count (which sizes blocks) still matches.
    previous = provenance(found.array).get("recipe") if resuming else None
    stored = (previous if isinstance(previous, dict) else {}).get("output", {})
    stored = stored if isinstance(stored, dict) else {}
    chunks, shards, block = options.chunks, options.shards, options.block
    if chunks is None and shards is None:
        chunks, shards = stored.get("chunks"), stored.get("shards")
    plan = make_plan(
        opened,
        op,
        chunks=chunks,
        shards=shards,
        block=block if block is not None else stored.get("block_shape"),
        n_jobs=executor.workers,
    )
    if options.format == "ome-zarr" and block is None and not stored:
        plan = pyramid_plan(plan, opened, executor.workers)
    # More jobs than blocks would only start idle threads or processes.
    executor.limit(len(plan))
    zarr_format = options.zarr_format or stored.get("zarr_format", 3)
    codec = options.codec or stored.get("codec", "zstd")
    wanted = wanted_blocks(plan, opened, options.region)
    labels = is_labels(opened, plan.op)
    image = None
    if options.format == "ome-zarr":
        levels = options.levels
        if levels is None and isinstance(stored.get("levels"), int):
            levels = stored["levels"]
        ndim = len(opened.shape)
        placement = (
            check_placement("scale", options.scale, ndim, positive=True),
            check_placement("translation", options.translation, ndim, positive=False),
        )
        image = output_image(
            opened, plan, store, levels=levels, labels=labels, placement=placement
        )
    elif options.scale is not None or options.translation is not None:
        raise ChunkwiseError(
            "scale and translation need format='ome-zarr': a plain array has no "
            "place to record them"
        )
    recipe = make_recipe(
        opened, plan, zarr_format, codec, None if image is None else len(image.levels)
    )
    if resuming:
        check_recipe(found, recipe)
    if options.check_space:
        # Another's cluster has its own memory, not this machine's.
        here = executor.workers if executor.owns_workers else 0
        check_resources(plan, store, here, opened)
    # A cluster that cannot start is refused here, before the output is touched.
    executor.start()
    claim = claim_output(store, found, run_id=new_run_id(), replace=options.overwrite)
    try:
        output = open_output_for(
            store, found, recipe, plan, resume=resuming, image=image, labels=labels
        )
    except OSError as error:
        claim.abandon()
        raise ChunkwiseError(
            f"cannot create the output: {reason(error, where_is(store))}"
        ) from None
    except BaseException:
        claim.abandon()
        raise
    if opened.cache_bytes is None:
        opened.cache.max_bytes = cache_budget(opened, plan, executor.workers)
    return Run(
        opened,
        plan,
        output,
        executor=executor,
        cancel=cancel,
        nice=options.nice,
        claim=claim,
        resumed=resuming,
        wanted=wanted,
        labels=labels,
        priority=priority_boxes(plan, opened, priority),
    )


def process(
    source: Any,
    op: Operation,
    out: Any = None,
    options: RunOptions | None = None,
    *,
    progress: bool = False,
    cancel: CancelToken | None = None,
    **settings: Any,
) -> zarr.Array | zarr.Group:
    """Process a whole volume, chunk by chunk, in parallel, into a Zarr array.

    The result equals ``op`` applied to the whole array in memory.

    Parameters
    ----------
    source : str, os.PathLike, zarr.Array or numpy.ndarray
        The input: a local Zarr directory or ``.zip``, an fsspec URL, an OME-Zarr
        image (level 0), an open array or an in-memory array. It is only read.
    op : Operation
        From `chunkwise.ops`, or several joined with `chunkwise.chain`.
    out : str, os.PathLike, zarr store or None
        Where to write: a directory path, an fsspec URL, a zarr store, or None for
        a new in-memory store.
    options : RunOptions, optional
        How the run goes: jobs, backend, output layout, resume, region and the
        rest; see `RunOptions` for each. Default: all defaults.
    progress : bool
        Show a progress bar on stderr.
    cancel : CancelToken, optional
        Set it from another thread to stop the run.
    **settings
        Fields of `RunOptions`, changed from ``options``: ``n_jobs=4``,
        ``backend="dask"``, ``resume=True``...

    Returns
    -------
    zarr.Array or zarr.Group
        The output array; for ``ome-zarr``, the image's group (level ``"0"`` is
        the full resolution).

    Raises
    ------
    ChunkwiseError
        Bad input, parameters or output location, an output in use by another run
        (each local output is locked while a run writes it), or one that cannot be
        created; nothing is written.
    BlockError
        A block failed; the output keeps finished blocks and is marked failed.
    Cancelled
        The run was cancelled; the output is marked cancelled and can be resumed.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> volume = np.random.default_rng(0).random((40, 50, 60), dtype=np.float32)
    >>> result = process(volume, ops.gaussian(2), chunks=(16, 16, 16), n_jobs=2)
    >>> bool((result[:] == ops.gaussian(2)(volume)).all())
    True
    """
    run = iter_process(source, op, out, options, cancel=cancel, **settings)
    if not progress:
        for _ in run:
            pass
    else:
        from chunkwise._progress import progress_bar

        with progress_bar(run) as bar:
            for record in run:
                bar.advance(record)
    return run.target.record


def plan(
    source: Any, op: Operation, options: RunOptions | None = None, **settings: Any
) -> Plan:
    """Describe a run without running it: output layout, blocks and estimates.

    The blocks are those `process` runs with the same options: sized for the
    jobs of the same backend (with ``backend="dask"`` this asks the cluster how
    many threads it has).

    Parameters
    ----------
    source, op, options, **settings
        As for `process`.

    Returns
    -------
    Plan
        ``len(plan)`` blocks, ``plan.block(i)`` for any of them (made on demand),
        ``bytes_read``, ``bytes_written`` and ``peak_bytes_per_job`` estimates.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> p = plan(np.zeros((256, 256, 256), np.uint8), ops.downsample(2), n_jobs=2)
    >>> p.shape, p.chunks
    ((128, 128, 128), (64, 64, 64))
    """
    options = RunOptions.of(options, **settings)
    storage = check_storage_options(options.storage_options, source)
    opened, op = _open_input(source, as_operation(op), options, storage)
    executor = open_executor(options.backend, options.n_jobs, options.scheduler)
    try:
        workers = executor.workers
    finally:
        executor.close()
    planned = make_plan(
        opened,
        op,
        chunks=options.chunks,
        shards=options.shards,
        block=options.block,
        n_jobs=workers,
    )
    if options.format == "ome-zarr" and options.block is None:
        planned = pyramid_plan(planned, opened, workers)
    return planned
