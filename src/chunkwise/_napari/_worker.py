"""Streaming a run into napari: the engine's records, off the main thread.

The run's blocks execute in a napari worker thread; each finished block comes back
to the main thread as a record. Layer refreshes are throttled to one per
`REFRESH_SECONDS`, and napari's activity dock shows the worker's progress.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from napari.layers import Layer

    from chunkwise import BlockDone, Run

__all__ = ["REFRESH_SECONDS", "RunStream"]

#: At most about ten refreshes a second: enough to watch, cheap for the event loop.
REFRESH_SECONDS = 0.1


@dataclass(frozen=True)
class _Ended:
    """How a run ended, handed back as the worker's return value.

    superqt treats a RuntimeError out of a worker (and chunkwise's BlockError and
    Cancelled are RuntimeErrors) as a deleted thread and drops it, so the end is
    returned in a box rather than raised.
    """

    error: BaseException | None


def _records(run: Run) -> Generator[BlockDone, None, _Ended]:
    try:
        yield from run
    except Exception as error:
        return _Ended(error)
    return _Ended(None)


class RunStream:
    """Runs ``run`` in a worker thread and keeps ``layer`` up to date.

    Parameters
    ----------
    run : chunkwise.Run
        From `chunkwise.iter_process`.
    layer : napari.layers.Layer
        The layer that shows ``run.output``.
    on_record : callable
        Called on the main thread with each `BlockDone`.
    on_end : callable
        Called on the main thread once, with None (complete) or the exception
        that ended the run (`chunkwise.Cancelled` included).
    """

    def __init__(
        self,
        run: Run,
        layer: Layer,
        on_record: Callable[[BlockDone], None],
        on_end: Callable[[BaseException | None], None],
    ) -> None:
        self.run = run
        self.layer = layer
        self.refreshes = 0
        self.started = time.perf_counter()
        self._dirty = False
        self._on_record = on_record
        self._on_end = on_end
        self._ended = False
        self._detached = False
        remaining = len(run.plan) - run.done_at_start
        self.worker = create_worker(
            _records,
            run,
            _start_thread=False,
            _progress={"total": remaining, "desc": f"chunkwise {run.plan.op.name}"},
        )
        self.worker.yielded.connect(self._on_yielded)
        self.worker.returned.connect(lambda ended: self._end(ended.error))
        self.worker.errored.connect(self._end)
        self.worker.finished.connect(lambda: self._end(None))
        self._timer = QTimer()
        self._timer.setInterval(int(REFRESH_SECONDS * 1000))
        self._timer.timeout.connect(self._refresh_if_dirty)

    def start(self) -> None:
        """Start computing blocks."""
        self._timer.start()
        self.worker.start()

    def detach(self) -> None:
        """Cancel, and stop reporting: the widget that listened is gone."""
        self.run.cancel()
        self._detached = True
        self._on_record = lambda record: None
        self._on_end = lambda error: None
        with contextlib.suppress(RuntimeError):  # Qt may have deleted it already
            self._timer.stop()

    def cancel(self) -> None:
        """Stop after the blocks in flight; finished blocks stay written."""
        self.run.cancel()

    @property
    def running(self) -> bool:
        """Whether the run has not ended yet."""
        return not self._ended

    def _on_yielded(self, record: BlockDone) -> None:
        self._dirty = True
        self._on_record(record)

    def _refresh_if_dirty(self) -> None:
        if self._dirty and not self._detached:
            self._dirty = False
            self.refreshes += 1
            self.layer.refresh()

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._dirty = True
        self._refresh_if_dirty()
        self._timer.stop()
        self._on_end(error)
