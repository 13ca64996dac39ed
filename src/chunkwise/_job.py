"""One job: compute one block and write its chunks, in whatever process runs it."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zarr

from chunkwise._output import local_root, reason
from chunkwise._store import write_box
from chunkwise.errors import BlockError
from chunkwise.ops._base import evaluate

if TYPE_CHECKING:
    import numpy as np

    from chunkwise._geometry import Box
    from chunkwise._order import Ranking
    from chunkwise._output import Fence
    from chunkwise._plan import Plan
    from chunkwise._pyramid import InBlock
    from chunkwise._source import Source
    from chunkwise._store import ChunkWriter

_PRIORITY = threading.local()


def lower_priority(nice: int) -> None:
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


@dataclass(frozen=True)
class Job:
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
            lower_priority(self.nice)
        if self.zarr_config is not None:
            zarr.config.set(self.zarr_config)
        began = time.perf_counter()
        block = self.plan.block(index)
        where = (
            f"block {index} (output {format_box(block.box)}, "
            f"input {format_box(block.input_box)})"
        )
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
                f"{where} could not be written: {reason(error, where_is(self.output))}"
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


def where_is(output: Any) -> str:
    """An output's location, for messages."""
    store = output.store_path.store if isinstance(output, zarr.Array) else output
    root = local_root(store)
    return str(root) if root is not None else str(store)


def format_box(box: Box) -> str:
    return (
        "["
        + ", ".join(f"{a}:{b}" for a, b in zip(box.start, box.stop, strict=True))
        + "]"
    )
