"""Streaming a run into napari: the engine's records, off the main thread.

The run's blocks execute in a napari worker thread; each finished block comes back
to the main thread as a record. The main thread does little per record: once per
`REFRESH_SECONDS` it reports the latest record and, if a block finished in the view,
reads the view again off the main thread (see `LiveOutput`) before refreshing.

Measured on the 256³ gaussian sample on two cores (benchmarks/gui_latency.py), each
of these cost the event loop a stall of its own: napari's activity-dock progress
bar (120-160 ms to create, then a synchronous repaint and a nested processEvents
per record), the widget's progress bar (a synchronous repaint, 25-70 ms, per
record) and the refresh's read of the view on the main thread (30-80 ms).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import Qt, QTimer

from chunkwise._napari._live import LiveOutput, LivePyramid

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from napari.layers import Layer

    from chunkwise import BlockDone, Run
    from chunkwise._geometry import Box

__all__ = ["CLOSE_WAIT_SECONDS", "REFRESH_SECONDS", "RunStream"]

#: At most about ten refreshes a second: enough to watch, cheap for the event loop.
REFRESH_SECONDS = 0.1
#: How long closing napari or the dock waits for a cancelled run's blocks in flight,
#: so that its store says "cancelled" rather than "running" when napari is gone.
CLOSE_WAIT_SECONDS = 10.0
#: No refresh this long after napari starts removing a layer, and after it has
#: removed it: refreshing one layer while napari removes another crashed napari
#: (vispy/Mesa; issue 11).
REMOVAL_QUIET_SECONDS = 0.5


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


def _drain(run: Run) -> BaseException | None:
    """Iterate a cancelled ``run`` to its end, so that it records how it ended."""
    try:
        for _ in run:
            pass
    except Exception as error:
        return error
    return None


class RunStream:
    """Runs ``run`` in a worker thread and keeps ``layer`` up to date.

    Parameters
    ----------
    run : chunkwise.Run
        From `chunkwise.iter_process`.
    layer : napari.layers.Layer
        The layer that shows ``run.output``, through a `LiveOutput` until the run
        ends; then it gets ``run.output`` itself.
    on_progress : callable
        Called on the main thread with the latest `BlockDone`, at most once per
        `REFRESH_SECONDS` and once more at the end.
    on_end : callable
        Called on the main thread once, with None (complete) or the exception
        that ended the run (`chunkwise.Cancelled` included).
    live : LiveOutput or LivePyramid, optional
        What ``layer`` shows from `start` on, if it does not show it yet: by
        default ``layer.data``.
    """

    def __init__(
        self,
        run: Run,
        layer: Layer,
        on_progress: Callable[[BlockDone], None],
        on_end: Callable[[BaseException | None], None],
        *,
        live: LiveOutput | LivePyramid | None = None,
    ) -> None:
        self.run = run
        self.layer = layer
        self.live: LiveOutput | LivePyramid = layer.data if live is None else live
        #: Refreshes that showed new blocks in the view, the last one included.
        self.refreshes = 0
        #: Reads of the view started off the main thread.
        self.reads = 0
        #: When `start` was called.
        self.started = time.perf_counter()
        self._latest: BlockDone | None = None
        self._landed: list[tuple[int, Box]] = []
        self._stale = False
        self._reading = False
        self._moved = False
        self._on_progress = on_progress
        self._on_end = on_end
        self._ended = False
        self._detached = False
        self._layer_gone = False
        self._quiet_until = 0.0
        self._started = False
        #: Set in the worker thread once the run has recorded how it ended.
        self._run_over = threading.Event()
        self._aborted_with: BaseException | None = None
        # No `_progress` for napari's activity dock: the widget shows the same.
        self.worker = create_worker(_records, run, _start_thread=False)
        self.worker.yielded.connect(self._on_yielded)
        self.worker.returned.connect(lambda ended: self._end(ended.error))
        self.worker.errored.connect(self._end)
        self.worker.finished.connect(lambda: self._end(self._aborted_with))
        # Both in the worker thread, before napari's event loop may be gone: napari
        # quits every worker as its window closes, and a quit generator is left
        # suspended, its run neither finished nor marked cancelled.
        direct = Qt.ConnectionType.DirectConnection
        self.worker.aborted.connect(self._on_aborted, direct)
        self.worker.finished.connect(self._run_over.set, direct)
        self._timer = QTimer()
        self._timer.setInterval(int(REFRESH_SECONDS * 1000))
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        """Start computing blocks."""
        if self._started:
            return
        self._started = True
        self.started = time.perf_counter()
        # A view napari moves to is read off the main thread too.
        self.live.defer_reads(self._on_view_moved)
        self._timer.start()
        self.worker.start()

    def detach(self, *, wait: float = 0.0) -> bool:
        """Cancel, and stop reporting: the widget that listened is gone.

        Waits up to ``wait`` seconds for the run to record that it was cancelled
        (a run not started yet starts, to record it); returns whether it has.
        """
        self.run.cancel()
        self.forget_layer()
        self._detached = True
        self._on_progress = lambda record: None
        self._on_end = lambda error: None
        with contextlib.suppress(RuntimeError):  # Qt may have deleted it already
            self._timer.stop()
        if not self._started:
            self._started = True
            self.worker.start()
        return self._run_over.wait(wait)

    def forget_layer(self) -> None:
        """Never touch the layer again: napari is removing it (or its window)."""
        self._layer_gone = True

    def pause_refresh(self) -> None:
        """Refresh nothing for `REMOVAL_QUIET_SECONDS`: napari removes a layer."""
        self._quiet_until = time.perf_counter() + REMOVAL_QUIET_SECONDS

    @property
    def refresh_paused(self) -> bool:
        """Whether the layer is not refreshed now (gone, or napari removing one)."""
        return self._layer_gone or time.perf_counter() < self._quiet_until

    def cancel(self) -> None:
        """Stop after the blocks in flight; finished blocks stay written."""
        self.run.cancel()

    @property
    def over(self) -> threading.Event:
        """Set, in the worker thread, once the run has recorded how it ended."""
        return self._run_over

    @property
    def running(self) -> bool:
        """Whether the run has not ended yet."""
        return not self._ended

    def _on_aborted(self) -> None:
        # In the worker thread, where the suspended run can still be finished.
        self.run.cancel()
        self._aborted_with = _drain(self.run)

    def _on_yielded(self, record: BlockDone) -> None:
        self._latest = record
        self._landed.append((0, record.box))
        self._landed.extend(record.levels)
        self.live.written()

    def _on_tick(self) -> None:
        self._report()
        # Blocks off the view change nothing on screen: no read, no refresh.
        self._stale |= any(self.live.shows(box, level) for level, box in self._landed)
        self._landed.clear()
        self._read_view()

    def _on_view_moved(self) -> None:
        # Called while napari slices the layer: the read starts in a turn of its own.
        self._stale = True
        if not self._moved:
            self._moved = True
            QTimer.singleShot(0, self._read_moved_view)

    def _read_moved_view(self) -> None:
        self._moved = False
        if not self._ended:
            self._read_view()

    def _read_view(self) -> None:
        """Read the view in a thread if it is stale and no read is under way."""
        if self._stale and not self._reading and not self.refresh_paused:
            self._stale = False
            self._reading = True
            self.reads += 1
            reader = create_worker(self.live.read, self.live.view, _start_thread=False)
            reader.returned.connect(self._on_read)
            reader.errored.connect(self._on_read_failed)
            reader.start()

    def _report(self) -> None:
        if self._latest is not None:
            record, self._latest = self._latest, None
            self._on_progress(record)

    def _on_read(self, result: tuple[Any, np.ndarray]) -> None:
        self._reading = False
        if self._ended or self._layer_gone:
            return
        if self.refresh_paused:
            self._stale = True  # read again once napari is done removing
            return
        self.live.keep(*result)
        if result[0] != self.live.view:
            # napari moved on meanwhile: what was read stands in while the view is
            # read again, without a refresh that would show the old view.
            self._stale = True
            self._read_view()
            return
        self.refreshes += 1
        # Only the pixels change: the extent is fixed, and the thumbnail (a zoom and
        # a repaint of the layer list) waits for the end, when the data is swapped.
        self.layer.refresh(extent=False, thumbnail=False, highlight=False)

    def _on_read_failed(self, error: BaseException) -> None:
        # A chunk caught mid-write, say: the next tick reads the view again.
        self._reading = False
        self._stale = True

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._timer.stop()
        self._report()
        self.live.defer_reads(None)
        self.live.forget()
        if not self._layer_gone:
            # The jobs are done, so napari's own read of the view is the quick one
            # (~15 ms), and the layer holds the output itself again.
            self.layer.data = self.live.final
            self.refreshes += 1
        self._on_end(error)
