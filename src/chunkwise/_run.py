"""Running a plan: joblib execution, progress records, cancellation and resume.

`iter_process` returns a `Run`: the output exists as soon as it returns, and iterating
the run executes the blocks and yields one `BlockDone` per finished block. `process`
drains a run. There is one implementation; the CLI and the napari plugin only
consume its records.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import json
import math
import os
import shutil
import sys
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import zarr
from zarr.storage import MemoryStore

from chunkwise import __version__, ops
from chunkwise._api import _region_box as region_box
from chunkwise._api import check_n_jobs
from chunkwise._fingerprint import changes, list_input
from chunkwise._geometry import Box, block_box
from chunkwise._keys import chunk_key, stored_units
from chunkwise._ngff import (
    Multiscale,
    check_placement,
    level_shapes,
    placed,
    plain,
    pyramid,
    resampled,
)
from chunkwise._order import BlockOrder, Ranking
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
from chunkwise._pyramid import InBlock, Pyramid, method_for
from chunkwise._remote import DEFAULT_TIMEOUT, check_storage_options
from chunkwise._source import Source, open_source, with_axes
from chunkwise._store import (
    ATTRIBUTE,
    ChunkWriter,
    Ledger,
    Output,
    Status,
    check_output_location,
    create_image,
    create_output,
    now,
    open_output,
    output_store,
    provenance,
    write_box,
)
from chunkwise._verify import (
    check_blocks,
    check_level,
    forget_block,
    layout_mismatch,
    remove_partials,
)
from chunkwise._zarr_compat import sync
from chunkwise.errors import BlockError, Cancelled, ChunkwiseError
from chunkwise.ops._axes import fit_axes
from chunkwise.ops._base import evaluate
from chunkwise.ops._catalogue import as_operation

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from chunkwise.ops import Operation

__all__ = ["BACKENDS", "BlockDone", "CancelToken", "Run", "iter_process", "process"]

BACKENDS = ("threading", "loky")
#: Output formats: one Zarr array, or an OME-Zarr image with a pyramid.
FORMATS = ("zarr", "ome-zarr")
#: By default, pyramid levels are added until the largest axis is at most this.
SMALLEST_LEVEL = 256


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


def _share_malloc_arena() -> None:
    """Make the threads of this process allocate from one glibc arena.

    A run's buffers are often freed by another thread than the one that made them
    (zarr encodes and writes in its own threads), and glibc's per-thread arenas then
    keep the freed memory each to itself. With one arena it is reused: peak RSS of
    the benchmark's median run went from 107 to 100 MB and Gaussian's from 141 to
    137 MB, at the same speed (interleaved runs). It must happen before threads
    start, so it happens on import. A no-op without glibc's ``mallopt``. (A fixed
    mmap threshold saved as much but cost 20% of the time in page faults.)
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_arena_max = -8
    mallopt(m_arena_max, 1)


_share_malloc_arena()


_PRIORITY = threading.local()


def _lower_priority(nice: int) -> None:
    """Raise this job thread's niceness by ``nice``, once per thread (Linux).

    Linux schedules threads apart, so a viewer's event loop and its OpenGL
    rendering then get a core as soon as they need one, while the jobs still use
    every idle cycle. Lowering a priority cannot be undone without privileges, so
    it is never done to the thread iterating the run (that runs the jobs when
    ``n_jobs=1``); joblib's job threads end with the run. Elsewhere a no-op:
    there, the same call would lower the whole process.
    """
    if not sys.platform.startswith("linux") or getattr(_PRIORITY, "nice", 0):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + nice, 19))
    _PRIORITY.nice = nice


def _zarr_concurrency(n_jobs: int) -> dict[str, int]:
    # Each job already runs on its own core; zarr's own concurrency within a job only
    # needs to fill the cores the jobs leave idle.
    return {"async.concurrency": max(1, joblib.cpu_count() // n_jobs)}


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to compute and write one block (picklable)."""

    source: Source
    plan: Plan
    output: zarr.Array
    zarr_config: dict[str, int] | None
    #: Which blocks are complete, shared by the threads of a run; None in worker
    #: processes, which see only their own blocks.
    done: np.ndarray | None
    #: Whether blocks share input chunks (halos): if not, reads skip the cache.
    shared: bool
    #: How much lower than the caller's the job threads' CPU priority is.
    nice: int
    #: The thread iterating the run, which runs jobs itself when there is one.
    caller: int
    #: Writes chunks to their files directly, where that is what zarr would do.
    writer: ChunkWriter | None
    #: Checked before writing: the run still owns its output (None: not local).
    fence: Fence | None
    #: Builds the coarser levels' chunks inside the block (OME-Zarr outputs).
    in_block: InBlock | None = None

    def __call__(
        self, index: int, ranking: Ranking | None = None
    ) -> tuple[int, Box, float, bytes, list[tuple[int, tuple[int, ...], bytes]]]:
        if self.nice and threading.get_native_id() != self.caller:
            _lower_priority(self.nice)
        if self.zarr_config is not None:
            zarr.config.set(self.zarr_config)
        began = time.perf_counter()
        block = self.plan.block(index)
        where = f"block {index} (output {_format_box(block.box)})"
        try:
            data = evaluate(
                self.plan.op,
                self.source.shape,
                self.source.dtype,
                functools.partial(self.source.read, cached=self.shared),
                block.box,
            )
            written = write_box(self.output, block.box, data, self.writer, self.fence)
            built = (
                [] if self.in_block is None else self.in_block.build(block.box, data)
            )
        except BlockError as error:
            raise BlockError(f"{where}: {error}") from error
        except OSError as error:
            raise BlockError(
                f"{where} could not be written: {reason(error, _where(self.output))}"
            ) from error
        except (Exception, SystemExit) as error:
            raise BlockError(
                f"{where} failed: {type(error).__name__}: {error}"
            ) from error
        rank = None if ranking is None else ranking.rank
        if self.done is not None:
            self.done[index] = True
            done = self.done
            pending = lambda other: not done[other]  # noqa: E731
        else:
            # Blocks are dispatched in rank order: assume the earlier ones are done.
            when = (lambda other: other) if rank is None else rank
            mine = when(index)
            pending = lambda other: when(other) > mine  # noqa: E731
        self.source.release(
            block.input_box, lambda chunk: self.plan.still_read(chunk, pending, rank)
        )
        return index, block.box, time.perf_counter() - began, written, built


def _where(output: Any) -> str:
    """An output's location, for messages."""
    store = output.store_path.store if isinstance(output, zarr.Array) else output
    root = local_root(store)
    return str(root) if root is not None else str(store)


def _format_box(box: Box) -> str:
    return (
        "["
        + ", ".join(f"{a}:{b}" for a, b in zip(box.start, box.stop, strict=True))
        + "]"
    )


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


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
        n_jobs: int,
        backend: str,
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
        self._n_jobs = n_jobs
        self._backend = backend
        self._nice = nice
        self._claim = claim or Claim(None, None)
        self._resumed = resumed
        # However the run ends, even unstarted and dropped, its lock is let go.
        self._release = weakref.finalize(self, self._claim.release)
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

    def _tasks(self, job: _Job, done: Any) -> Iterator[Any]:
        todo = ~done if self.wanted is None else self.wanted & ~done
        for index, ranking in self._order.iter_blocks(todo):
            if self.cancel_token.cancelled:
                return
            yield joblib.delayed(job)(index, ranking)

    def _check_resumed(self) -> None:
        """Before trusting an earlier run's blocks, decode their chunks.

        A block whose chunk is truncated, damaged or unreadable is forgotten and
        computed again; stale ``.partial`` files of a killed writer are removed.
        """
        root = local_root(self.output.store_path.store)
        if root is not None:
            remove_partials(root)
        trusted = np.flatnonzero(self._done_mask)
        damaged = check_blocks(self.output, self.plan, trusted, self._n_jobs)
        for index in damaged:
            # Its chunks go too: zarr reads a shard before writing into it.
            box = self.plan.block(index).box
            forget_block(self.output, box)
            self._ledger.unmark(index)
            self._done_mask[index] = False
            self._damaged.append(box)
        for level in self.target.levels[1:]:
            # A damaged chunk of a level is built again from the level below.
            for problem in check_level(level, self._n_jobs):
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
                _check_fingerprint(self.target, listing.summary())
            fields["input_fingerprint"] = listing.summary()
            # The run's own view: previews share the source and must not see it.
            self.source = dataclasses.replace(self.source, listing=listing)
        try:
            if self._resumed:
                self._check_resumed()
            self.target.update(drop=("error",), **fields)
        except OSError as error:
            raise BlockError(
                f"the output could not be updated: {reason(error, _where(self.output))}"
            ) from None

    def _mark(self, index: int, written: bytes) -> None:
        try:
            self._ledger.mark(index, written)
        except OSError as error:
            raise BlockError(
                f"block {index} could not be recorded in the ledger: "
                f"{reason(error, _where(self.output))}"
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
        config = _zarr_concurrency(self._n_jobs)
        fence = self._claim.fence()
        try:
            pyramid = self._pyramid(fence)
        except OSError as error:
            self._finish(Status.FAILED, done, str(error), failing=True)
            raise BlockError(
                "the output's levels could not be read: "
                f"{reason(error, _where(self.output))}"
            ) from None
        job = _Job(
            self.source,
            self.plan,
            self.output,
            config if self._backend != "threading" else None,
            self._done_mask.copy() if self._backend == "threading" else None,
            self.plan.shares_input(self.source.chunks or self.source.shape),
            self._nice,
            threading.get_native_id(),
            ChunkWriter.of(self.output, fence),
            fence,
            None
            if pyramid is None
            else InBlock.of(self.target.levels, pyramid.method, fence),
        )
        parallel = joblib.Parallel(
            n_jobs=self._n_jobs,
            backend=self._backend,
            return_as="generator_unordered",
            batch_size=1,
        )
        results = parallel(self._tasks(job, self._done_mask))
        status, error_text, failure = Status.FAILED, None, None
        try:
            with zarr.config.set(config):
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
                f"{reason(error, _where(self.output))}"
            )
            raise BlockError(failure) from None
        finally:
            with warnings.catch_warnings():
                # Closing early leaves results unread; joblib warns of each.
                warnings.filterwarnings("ignore", "tasks have been successfully")
                warnings.filterwarnings("ignore", ".*tasks which were still being")
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
                    f"recorded: {reason(problem, _where(self.output))}"
                ) from None
        finally:
            if done > self.done_at_start:
                self._claim.purge()
            self._release()


def _check_backend(backend: str, store: Any) -> None:
    if backend not in BACKENDS:
        raise ChunkwiseError(
            f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}"
        )
    if backend != "threading" and isinstance(store, MemoryStore):
        raise ChunkwiseError(
            f"the {backend} backend runs in other processes and cannot write to an "
            "in-memory store; write to a path"
        )


def _recipe(
    source: Source, plan: Plan, zarr_format: int, codec: str, levels: int | None
) -> dict[str, Any]:
    output = plan.describe() | {"zarr_format": zarr_format, "codec": codec}
    if levels is not None:
        output |= {"format": "ome-zarr", "levels": levels}
    return _json(
        {"operation": plan.op.to_dict(), "input": source.describe(), "output": output}
    )


def _check_existing(
    found: Existing, *, overwrite: bool, resume: bool, force: bool
) -> None:
    """Refuse, before planning, what an existing output rules out."""
    kind = found.found
    if kind in (Found.NOTHING, Found.EMPTY):
        return
    if kind is Found.OTHER:
        detail = f" ({found.detail})" if found.detail else ""
        raise ChunkwiseError(
            f"the output location holds {kind.value}{detail}; refusing to replace it"
        )
    if resume and kind is not Found.CHUNKWISE:
        detail = f" ({found.detail})" if found.detail else ""
        raise ChunkwiseError(
            f"cannot resume: the output holds {kind.value}{detail}; "
            + (
                "use overwrite to start again"
                if kind is Found.BROKEN
                else "refusing to touch it"
            )
        )
    if kind is Found.FOREIGN and overwrite and not force:
        raise ChunkwiseError(
            f"the output holds {kind.value}; refusing to replace it (pass force "
            "(--force) with overwrite to replace it anyway)"
        )
    if not (overwrite or resume):
        hint = (
            "pass overwrite (--overwrite) to replace it or resume (--resume) to "
            "finish it"
            if kind is not Found.FOREIGN
            else "choose another output"
        )
        raise ChunkwiseError(f"the output already exists ({kind.value}); {hint}")


def _check_not_input(source: Source, found: Existing) -> None:
    """Refuse an output whose array is the input seen by another name (a URL)."""
    if found.array is None or not isinstance(source.array, zarr.Array):
        return
    mine, theirs = provenance(found.array), provenance(source.array)
    # Every run (and sample) records its own id: two arrays with one are one array.
    if mine.get("run_id") and mine.get("run_id") == theirs.get("run_id"):
        raise ChunkwiseError(
            "the output holds the same array as the input (identical provenance, "
            f"run {mine.get('run_id', '?')}); refusing to replace the input"
        )


def _check_recipe(found: Existing, recipe: dict[str, Any]) -> None:
    stored = provenance(found.array).get("recipe")
    if stored != recipe:
        differs = sorted(
            k
            for k in recipe
            if not isinstance(stored, dict) or stored.get(k) != recipe[k]
        )
        raise ChunkwiseError(
            "cannot resume: the existing output was made with a different "
            f"{' and '.join(differs or ['recipe'])}; use overwrite to start again"
        )


def _check_fingerprint(output: Output, fingerprint: dict[str, Any]) -> None:
    before = output.provenance.get("input_fingerprint")
    change = changes(before, fingerprint) if isinstance(before, dict) else None
    if change:
        raise ChunkwiseError(
            "cannot resume: the input changed since this output was started "
            f"({change}); use overwrite to start again"
        )


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


def _physical_memory() -> int | None:
    """The machine's memory in bytes, None where the system does not say."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _check_resources(plan: Plan, store: Any, n_jobs: int, source: Source) -> None:
    """Refuse a run that cannot fit in memory or on the output's disk.

    Memory: the blocks in flight. Disk: the output's size compressed as well as the
    input is (at best 100x), against the free space where it goes.
    """
    physical = _physical_memory()
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


def _open_output(
    store: Any,
    found: Existing,
    recipe: dict[str, Any],
    plan: Plan,
    *,
    resume: bool,
    image: Multiscale | None,
    labels: bool = False,
) -> Output:
    layout = recipe["output"]
    if resume and found.found is Found.CHUNKWISE:
        output = open_output(store, mode="r+")
        if output.provenance.get("recipe") != recipe:
            raise ChunkwiseError("the output changed while this run started; try again")
        problem = layout_mismatch(output.base, layout)
        if problem is None and len(output.levels) != layout.get("levels", 1):
            problem = (
                f"it has {len(output.levels)} levels, its run record "
                f"{layout.get('levels', 1)}"
            )
        if problem:
            raise ChunkwiseError(
                f"cannot resume: {problem}; use overwrite to start again"
            )
        return output
    attributes: dict[str, Any] = {
        "version": __version__,
        "operation": recipe["operation"],
        "input": recipe["input"],
        "recipe": recipe,
        "status": Status.CREATED.value,
        # What the output holds, for readers (napari's layer type); not in the
        # recipe, which says how it is computed.
        "labels": labels,
    }
    zarr_format = layout["zarr_format"]
    replace = found.found is not Found.NOTHING
    if image is None:
        array = create_output(
            store,
            shape=plan.shape,
            dtype=plan.dtype,
            chunks=plan.chunks,
            shards=plan.shards,
            zarr_format=zarr_format,
            codec=layout["codec"],
            attributes=attributes,
            overwrite=replace,
        )
        return Output.of(array)
    # Locally the levels come first and the group's metadata last: a run killed
    # in between leaves levels without chunks, which the next run clears.
    local = local_root(store) is not None
    group = (
        None
        if local
        else create_image(
            store,
            image,
            zarr_format,
            attributes={ATTRIBUTE: attributes},
            overwrite=replace,
        )
    )
    shapes = level_shapes(plan.shape, image.spatial, len(image.levels), 1)
    levels = []
    for level, shape in zip(image.levels, shapes, strict=True):
        first = level is image.levels[0]
        chunks = tuple(min(c, n) for c, n in zip(plan.chunks, shape, strict=True))
        levels.append(
            create_output(
                store,
                name=level.path,
                shape=shape,
                dtype=plan.dtype,
                chunks=plan.chunks if first else chunks,
                shards=plan.shards if first else None,
                zarr_format=zarr_format,
                codec=layout["codec"],
                attributes=None,
                dimension_names=tuple(axis["name"] for axis in image.axes),
            )
        )
    if group is None:
        # zarr made the group (without attributes) with the first level.
        group = zarr.open_group(store=store, mode="r+")
        group.update_attributes(image.attributes(zarr_format) | {ATTRIBUTE: attributes})
    return Output(group, tuple(levels))


def _pyramid_plan(plan: Plan, source: Source, n_jobs: int) -> Plan:
    """``plan`` with blocks of whole 2x2x2 groups of chunks, where memory allows.

    A worker then builds level 1's chunks from its block in memory (`InBlock`)
    instead of the pyramid thread reading level 0 back: a conversion's blocks are
    single chunks otherwise. Blocks grow at most 8 times, and the jobs' memory at most
    a quarter of the machine's.
    """
    unit = plan.shards or plan.chunks
    spatial = source.spatial
    block = tuple(
        math.lcm(u, 2 * c) * math.ceil(b / math.lcm(u, 2 * c))
        if axis in spatial and n > c
        else b
        for axis, (b, u, c, n) in enumerate(
            zip(plan.block_shape, unit, plan.chunks, plan.shape, strict=True)
        )
    )
    if block == plan.block_shape:
        return plan
    block = tuple(
        min(b, -(-n // u) * u) for b, n, u in zip(block, plan.shape, unit, strict=True)
    )
    aligned = make_plan(
        source,
        plan.op,
        chunks=plan.chunks,
        shards=plan.shards,
        block=block,
        n_jobs=n_jobs,
    )
    physical = _physical_memory() or 0
    growth = aligned.peak_bytes_per_job / max(plan.peak_bytes_per_job, 1)
    fits = aligned.peak_bytes_per_job * n_jobs <= physical / 4
    return aligned if growth <= 8 and fits else plan


def _image(
    source: Source,
    plan: Plan,
    store: Any,
    *,
    levels: int | None,
    labels: bool,
    placement: tuple[Any, Any] = (None, None),
) -> Multiscale:
    """The NGFF image of the output, with its pyramid.

    It has the input's axes and place (``placement``'s scale and translation where
    given), scaled by the operation.
    """
    if len(source.shape) < 2:
        raise ChunkwiseError(
            "an OME-Zarr image has 2 to 5 axes; write 1D data as a plain Zarr "
            "array (format='zarr')"
        )
    base = placed(source.image or plain(source.shape), *placement)
    image = resampled(base, base.levels[0], plan.op.voxel_scale(len(plan.shape)))
    count = len(level_shapes(plan.shape, image.spatial, levels, SMALLEST_LEVEL))
    root = local_root(store)
    name = base.name or (root.name.split(".")[0] if root is not None else None)
    unchanged = all(isinstance(step, ops.copy) for step in plan.op.steps)
    image = dataclasses.replace(image, labels=labels)
    return pyramid(
        image, count, method=method_for(labels), name=name, keep_omero=unchanged
    )


def _is_labels(source: Source, op: Operation) -> bool:
    """Whether the output holds labels or a mask (its levels are reduced by mode)."""
    labels = source.image is not None and source.image.labels
    return op.labels_from(labels or source.dtype == bool)


def _check_format(format: str | None, out: Any, levels: Any) -> str:
    if format is None:
        if isinstance(out, str | os.PathLike):
            name = os.fspath(out)
        else:
            root = local_root(out)
            name = "" if root is None else str(root)
        format = "ome-zarr" if name.rstrip("/").endswith(".ome.zarr") else "zarr"
    if format not in FORMATS:
        raise ChunkwiseError(
            f"format must be one of {', '.join(FORMATS)}; got {format!r}"
        )
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ChunkwiseError(
                f"levels must be a whole number >= 1 (1: no pyramid), got {levels!r}"
            )
        if format != "ome-zarr":
            raise ChunkwiseError("levels needs format='ome-zarr' (--format ome-zarr)")
    return format


def wanted_blocks(plan: Plan, source: Source, region: Any) -> np.ndarray | None:
    """Which blocks write the output over ``region`` of the input (None: all).

    ``region`` is in input voxels: a `Box`, a tuple of slices, or text such as
    ``"0:64,100:900,100:900"`` (one ``start:stop`` per axis, either end left out
    for the edge).
    """
    if region is None:
        return None
    out = _output_box(plan, source, region)
    # Blocks tile the output on a grid: those over `out` are one slice of it.
    wanted = np.zeros(plan.grid, dtype=bool)
    wanted[
        tuple(
            slice(a // b, -(-c // b))
            for a, c, b in zip(out.start, out.stop, plan.block_shape, strict=True)
        )
    ] = True
    return wanted.ravel()


def priority_boxes(plan: Plan, source: Source, priority: Any) -> list[Box]:
    """The output boxes over ``priority``: one region of the input, or a list."""
    if priority is None:
        return []
    regions = priority if isinstance(priority, list) else [priority]
    return [_output_box(plan, source, region) for region in regions]


def _output_box(plan: Plan, source: Source, region: Any) -> Box:
    """The output voxels over ``region`` of the input (see `wanted_blocks`)."""
    if isinstance(region, str):
        region = _parse_region(region, len(source.shape))
    box, _ = region_box(region, source.shape)
    voxel = plan.op.voxel_scale(len(source.shape))
    out = Box(
        tuple(
            math.floor(Fraction(a) / Fraction(v).limit_denominator(1 << 20))
            for a, v in zip(box.start, voxel, strict=True)
        ),
        tuple(
            math.ceil(Fraction(b) / Fraction(v).limit_denominator(1 << 20))
            for b, v in zip(box.stop, voxel, strict=True)
        ),
    ).clip(plan.shape)
    if any(a >= b for a, b in zip(out.start, out.stop, strict=True)):
        raise ChunkwiseError(f"the region {region} covers no output voxel")
    return out


def _parse_region(text: str, ndim: int) -> tuple[slice, ...]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != ndim:
        raise ChunkwiseError(
            f"region {text!r} has {len(parts)} ranges for an input of {ndim} axes; "
            "write one start:stop per axis, as in 0:64,0:512,0:512"
        )
    slices = []
    for part in parts:
        ends = part.split(":")
        try:
            if len(ends) != 2:
                raise ValueError
            start, stop = (int(e) if e.strip() else None for e in ends)
        except ValueError:
            raise ChunkwiseError(
                f"region range {part!r} is not start:stop with whole numbers"
            ) from None
        slices.append(slice(start, stop))
    return tuple(slices)


def _check_flags(
    codec: Any, cancel: Any, *, overwrite: bool, resume: bool, force: bool
) -> None:
    if codec is not None and not isinstance(codec, str):
        raise ChunkwiseError(f"codec must be text such as 'zstd:3', got {codec!r}")
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise ChunkwiseError(
            f"cancel must be a chunkwise.CancelToken, got {type(cancel).__name__}"
        )
    if overwrite and resume:
        raise ChunkwiseError(
            "overwrite and resume exclude each other: overwrite starts again, "
            "resume finishes the existing output"
        )
    if force and not overwrite:
        raise ChunkwiseError("force only applies with overwrite")


def iter_process(
    source: Any,
    op: Operation,
    out: Any = None,
    *,
    n_jobs: int | None = None,
    backend: str = "threading",
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    block: Sequence[int] | None = None,
    zarr_format: int | None = None,
    codec: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    force: bool = False,
    cancel: CancelToken | None = None,
    cache_bytes: int | None = None,
    missing: str | None = None,
    nice: int = 0,
    check_space: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    format: str | None = None,
    levels: int | None = None,
    level: int | None = None,
    region: Any = None,
    scale: Sequence[float] | None = None,
    translation: Sequence[float] | None = None,
    axes: str | None = None,
    priority: Any = None,
    storage_options: dict[str, Any] | None = None,
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
    _check_flags(codec, cancel, overwrite=overwrite, resume=resume, force=force)
    n_jobs = check_n_jobs(n_jobs)
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ChunkwiseError(f"nice must be a whole number from 0 to 19, got {nice!r}")
    format = _check_format(format, out, levels)
    storage_options = check_storage_options(storage_options, source, out)
    opened = open_source(
        source,
        cache_bytes=cache_bytes,
        missing=missing,
        timeout=timeout,
        level=level,
        storage_options=storage_options,
    )
    opened = with_axes(opened, axes)
    op = fit_axes(op, opened.spatial, len(opened.shape))
    store = output_store(out, storage_options)
    _check_backend(backend, store)
    check_output_location(store, opened)
    found = inspect_output(store)
    _check_existing(found, overwrite=overwrite, resume=resume, force=force)
    _check_not_input(opened, found)
    resuming = resume and found.found is Found.CHUNKWISE
    # On resume, what was not given is taken from the output being finished, so that
    # resuming with another job count (which sizes blocks) still matches.
    previous = provenance(found.array).get("recipe") if resuming else None
    stored = (previous if isinstance(previous, dict) else {}).get("output", {})
    stored = stored if isinstance(stored, dict) else {}
    if chunks is None and shards is None:
        chunks, shards = stored.get("chunks"), stored.get("shards")
    plan = make_plan(
        opened,
        op,
        chunks=chunks,
        shards=shards,
        block=block if block is not None else stored.get("block_shape"),
        n_jobs=n_jobs,
    )
    if format == "ome-zarr" and block is None and not stored:
        plan = _pyramid_plan(plan, opened, n_jobs)
    # More jobs than blocks would only start idle threads or processes.
    n_jobs = max(1, min(n_jobs, len(plan)))
    zarr_format = zarr_format or stored.get("zarr_format", 3)
    codec = codec or stored.get("codec", "zstd")
    wanted = wanted_blocks(plan, opened, region)
    labels = _is_labels(opened, plan.op)
    image = None
    if format == "ome-zarr":
        if levels is None and isinstance(stored.get("levels"), int):
            levels = stored["levels"]
        ndim = len(opened.shape)
        placement = (
            check_placement("scale", scale, ndim, positive=True),
            check_placement("translation", translation, ndim, positive=False),
        )
        image = _image(
            opened, plan, store, levels=levels, labels=labels, placement=placement
        )
    elif scale is not None or translation is not None:
        raise ChunkwiseError(
            "scale and translation need format='ome-zarr': a plain array has no "
            "place to record them"
        )
    recipe = _recipe(
        opened, plan, zarr_format, codec, None if image is None else len(image.levels)
    )
    if resuming:
        _check_recipe(found, recipe)
    if check_space:
        _check_resources(plan, store, n_jobs, opened)
    claim = claim_output(store, found, run_id=new_run_id(), replace=overwrite)
    try:
        output = _open_output(
            store, found, recipe, plan, resume=resuming, image=image, labels=labels
        )
    except OSError as error:
        claim.abandon()
        raise ChunkwiseError(
            f"cannot create the output: {reason(error, _where(store))}"
        ) from None
    except BaseException:
        claim.abandon()
        raise
    if opened.cache_bytes is None:
        opened.cache.max_bytes = cache_budget(opened, plan, n_jobs)
    return Run(
        opened,
        plan,
        output,
        n_jobs=n_jobs,
        backend=backend,
        cancel=cancel or CancelToken(),
        nice=nice,
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
    *,
    n_jobs: int | None = None,
    backend: str = "threading",
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    block: Sequence[int] | None = None,
    zarr_format: int | None = None,
    codec: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    cancel: CancelToken | None = None,
    cache_bytes: int | None = None,
    missing: str | None = None,
    nice: int = 0,
    check_space: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    format: str | None = None,
    levels: int | None = None,
    level: int | None = None,
    region: Any = None,
    scale: Sequence[float] | None = None,
    translation: Sequence[float] | None = None,
    axes: str | None = None,
    storage_options: dict[str, Any] | None = None,
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
    n_jobs : int, optional
        Parallel jobs; default all cores. Negative counts back from all cores.
    backend : {"threading", "loky"}
        joblib backend. Threads suit scipy.ndimage, which releases the GIL; loky
        runs separate processes, for functions that hold the GIL.
    chunks : sequence of int, optional
        Output chunk shape (per axis, or per spatial axis). Default: the input's.
    shards : sequence of int, optional
        Zarr v3 shard shape, a multiple of ``chunks``; each job writes whole shards.
    block : sequence of int, optional
        Work block shape in output voxels, whole chunks (or shards) per axis.
        Default: chosen from the chunk shape and the number of jobs.
    zarr_format : {2, 3}, optional
        Output format; default 3 (on resume: the existing output's).
    codec : str, optional
        ``zstd``, ``lz4``, ``blosc-zstd``, ``gzip`` or ``none``, optionally with a
        level as in ``zstd:5``; default ``zstd`` at level 1 (on resume: the existing
        output's).
    overwrite : bool
        Replace an existing output that chunkwise made. The old output is renamed
        aside and deleted once the new run has written a block; a run killed
        meanwhile leaves it as ``.NAME.chunkwise-trash-ID`` beside the output,
        deleted by the next run there.
    resume : bool
        Finish an interrupted run into the existing output, computing only the
        blocks it has not recorded as complete. The input, operation and layout
        must be the same, and the input's files unchanged (names, sizes and
        modification times). Every chunk of the blocks it trusts is decoded first;
        a damaged one is computed again.
    force : bool
        With ``overwrite``, also replace a Zarr array that chunkwise did not make.
    progress : bool
        Show a progress bar on stderr.
    cancel : CancelToken, optional
        Set it from another thread to stop the run.
    cache_bytes : int, optional
        Budget for the cache of decoded input chunks, per process. Default: 32 MiB,
        or enough for the chunks a few blocks touch when chunks are large; it does
        not grow with the volume.
    missing : {"fill", "error"}, optional
        An input chunk that was never written reads as the fill value (Zarr's rule,
        right for sparse data), or, with ``"error"``, stops the run naming the chunk.
        Default: ``"error"`` for URLs, ``"fill"`` otherwise. Either way, a chunk
        that existed when the run started and is gone later fails the run.
    nice : int
        Run the job threads (or processes) this much below the caller's CPU
        priority, 0 to 19 (Linux; ignored elsewhere), so that a viewer or other
        interactive program on the same cores stays responsive. The napari plugin
        uses it.
    timeout : float or None
        Seconds an HTTP(S) input may send nothing before the read fails, naming
        what timed out (None: wait for ever).
    check_space : bool
        Refuse a local output that would not fit on its disk (its size estimated
        from the input's compression ratio) or blocks that would not fit in memory.
    format : {"zarr", "ome-zarr"}, optional
        ``zarr``: one array. ``ome-zarr``: an OME-Zarr image (NGFF 0.5 on Zarr v3,
        0.4 on v2) whose pyramid is built during the run, each coarser chunk as
        soon as the chunks it reduces are written (mean of 2 per axis, as
        ``downsample(2)``; mode for labels and masks). Its axes, scale and
        translation come from the input's NGFF metadata, composed with the
        operation's voxel size. Default: ``ome-zarr`` when ``out`` ends in
        ``.ome.zarr``.
    levels : int, optional
        With ``ome-zarr``: the number of levels, full resolution included.
        Default: levels are added until the largest axis is at most 256.
    level : int, optional
        With an OME-Zarr input: the level to process (default 0, the full
        resolution; a coarser one for a quick draft of the whole volume).
    region : Box, tuple of slice or str, optional
        Process only the output chunks over this region of the input (in input
        voxels, as ``"z0:z1,y0:y1,x0:x1"`` or slices). The rest stays the fill
        value and is not done: the run ends ``partial``, and a later resume, with
        another region or none, completes it.
    scale, translation : sequence of float, optional
        With ``ome-zarr``: the size of the input's voxels and the world position
        of its first voxel's centre, one number per axis, for an input whose own
        metadata lacks them or is wrong (a plain array shown with a scale in a
        viewer). They replace the input's NGFF values and are composed with the
        operation's voxel size, as those are. Default: the input's metadata, or
        unit voxels at the origin.
    axes : str, optional
        One letter per input axis: ``t`` (time), ``c`` (channel), ``z``, ``y``,
        ``x`` (space), as ``"czyx"``, ``"cyx"`` or ``"yxc"`` (an RGB image).
        Operations act on the space axes only, on each channel and time point
        apart. Default: the input's OME-Zarr axes, else the last 3 axes (2 for
        2D data) are space and the axes before them are not.
    storage_options : dict, optional
        fsspec's options for the file system of a URL input and output (both,
        where both are URLs given as text), such as ``{"endpoint_url":
        "http://...", "key": ..., "secret": ...}`` or ``{"anon": True}`` for
        ``s3://``. The environment (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
        ``AWS_ACCESS_KEY_ID``...) applies as well. They are never recorded. For
        other settings on each side, open the input yourself (``zarr.open_array(url,
        mode="r", storage_options=...)``): these then apply to the output only.

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
    run = iter_process(
        source,
        op,
        out,
        n_jobs=n_jobs,
        backend=backend,
        chunks=chunks,
        shards=shards,
        block=block,
        zarr_format=zarr_format,
        codec=codec,
        overwrite=overwrite,
        resume=resume,
        force=force,
        cancel=cancel,
        cache_bytes=cache_bytes,
        missing=missing,
        nice=nice,
        check_space=check_space,
        timeout=timeout,
        format=format,
        levels=levels,
        level=level,
        region=region,
        scale=scale,
        translation=translation,
        axes=axes,
        storage_options=storage_options,
    )
    if not progress:
        for _ in run:
            pass
    else:
        from chunkwise._progress import progress_bar

        with progress_bar(run) as bar:
            for record in run:
                bar.advance(record)
    return run.target.record
