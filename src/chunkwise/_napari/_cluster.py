"""The widget's connection to a dask scheduler: made off the main thread, then kept.

Starting a ``LocalCluster`` takes a second or two, and an address that does not
answer takes dask's connect timeout (30 s unless set): on napari's main thread
either would freeze the viewer. So Run with the dask backend asks `SchedulerLink`,
which connects in a thread of its own (the engine's `DaskConnection`) and then, on
the main thread, hands the connected client to the widget, which passes it to
`chunkwise.iter_process` as ``scheduler=`` (a client costs a run two quick
questions to the scheduler).

The connecting thread runs at a lower priority (Linux), and so does what it
starts: distributed's event-loop thread and a local cluster's worker processes
inherit it. Then napari's event loop gets a core as soon as it needs one while
the cluster starts (its workers import for a second or two on every core), and
while the cluster runs, as the threading backend's jobs let it.

The connection serves the next runs with the same scheduler (for a local cluster,
the same number of workers), is replaced when that changes, and is closed, the
local cluster's worker processes with it, when the dock or napari closes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QObject, Signal, Slot

from chunkwise._job import lower_priority
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable

    from chunkwise._executors._dask import DaskConnection

__all__ = ["LOCAL", "SchedulerLink"]

#: The scheduler field's word for a cluster started on this machine.
LOCAL = "local"
#: How long closing waits for a run on the cluster to end before closing it.
CLOSE_AFTER_SECONDS = 30.0

#: A connection's identity: the scheduler, and a local cluster's worker count.
_Key = tuple[str, int | None]
_Waiting = tuple[_Key, "Callable[[Any], None]", "Callable[[str], None]"]


class SchedulerLink:
    """One connection to a dask scheduler, made in a thread and kept for later runs.

    `connect` is called on the main thread, and so are its callbacks. Run with
    another scheduler replaces the connection; `close` ends it. ``nice`` is the
    niceness the connecting threads add to their own (see the module's docstring).
    """

    def __init__(self, *, nice: int = 0) -> None:
        self._nice = nice
        self._lock = threading.Lock()
        self._key: _Key | None = None
        self._connection: DaskConnection | None = None
        #: Keys with a connecting thread under way: one thread per key at a time.
        self._connecting: set[_Key] = set()
        #: What the main thread waits for: (key, on_ready, on_failed).
        self._waiting: _Waiting | None = None
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._relay = _Relay(self._on_arrived)

    @property
    def waiting(self) -> bool:
        """Whether a run waits for the connection."""
        return self._waiting is not None

    def connected(self, scheduler: str, n_jobs: int) -> bool:
        """Whether a live connection to ``scheduler`` is kept (no wait to start)."""
        connection = self._connection
        return (
            self._key == _key(scheduler, n_jobs)
            and connection is not None
            and connection.alive
        )

    def connect(
        self,
        scheduler: str,
        n_jobs: int,
        on_ready: Callable[[Any], None],
        on_failed: Callable[[str], None],
    ) -> None:
        """Call ``on_ready(client)``, or ``on_failed(message)``, once connected.

        ``scheduler`` is `LOCAL` (a local cluster of ``n_jobs`` single-threaded
        worker processes) or an address. The kept connection is checked (alive,
        with a worker) in the thread too: a scheduler that lost its workers would
        make the run wait for one on the main thread.
        """
        key = _key(scheduler, n_jobs)
        with self._lock:
            if self._closed:
                return
            self._waiting = (key, on_ready, on_failed)
            stale = None
            if self._key != key:
                stale, self._connection, self._key = self._connection, None, key
            start = key not in self._connecting
            self._connecting.add(key)
        if stale is not None:
            self._start("close", _close_after, stale, None)
        if start:
            self._start("connect", self._prepare, key)

    def cancel(self) -> None:
        """Forget the waiting run; a connection under way is still kept."""
        self._waiting = None

    def close(self, after: threading.Event | None = None) -> None:
        """Close the connection (in a thread) once ``after`` is set, and any to come.

        A connection under way is closed by its thread as it arrives.
        """
        with self._lock:
            self._closed = True
            self._waiting = None
            connection, self._connection = self._connection, None
        if connection is not None:
            self._start("close", _close_after, connection, after)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the threads; return whether all ended."""
        for thread in list(self._threads):
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _start(self, what: str, target: Callable[..., None], *args: Any) -> None:
        # Not daemons: Python finishes them before it exits, so that a local
        # cluster started or closed meanwhile leaves no worker process behind.
        thread = threading.Thread(
            target=target, args=args, name=f"chunkwise-dask-{what}"
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _prepare(self, key: _Key) -> None:
        """In its own thread: connect, or check the kept connection, then report."""
        lower_priority(self._nice)
        with self._lock:
            kept = self._connection if self._key == key else None
        result = _ready(kept, key)
        with self._lock:
            self._connecting.discard(key)
            current = not self._closed and self._key == key
            if isinstance(result, ChunkwiseError) and self._connection is kept:
                self._connection = None  # closed by `_ready`
            elif current:
                self._connection = result
        if not current:
            # A kept connection is closed by whoever took it: closed, or replaced.
            if not isinstance(result, ChunkwiseError) and result is not kept:
                result.close()
            return
        self._relay.arrived.emit((key, result))

    def _on_arrived(self, arrival: tuple[_Key, Any]) -> None:
        key, result = arrival
        waiting = self._waiting
        if waiting is None or waiting[0] != key:
            return  # cancelled, closed, or another scheduler asked for since
        self._waiting = None
        _, on_ready, on_failed = waiting
        if isinstance(result, ChunkwiseError):
            on_failed(str(result))
        else:
            on_ready(result.client)


def _key(scheduler: str, n_jobs: int) -> _Key:
    scheduler = scheduler.strip() or LOCAL
    return (scheduler, n_jobs if scheduler == LOCAL else None)


def _ready(kept: DaskConnection | None, key: _Key) -> DaskConnection | ChunkwiseError:
    """``kept`` if it is alive and has a worker, else a new connection; or why not."""
    connection = kept
    try:
        if connection is not None and not connection.alive:
            connection.close()
            connection = None
        if connection is None:
            from chunkwise._executors._dask import DaskConnection

            connection = DaskConnection(*key)
        connection.wait_for_workers()
    except Exception as error:  # in a thread: whatever it is, said in one line
        if connection is not None:
            connection.close()
        if isinstance(error, ChunkwiseError):
            return error
        text = str(error).strip().splitlines()
        return ChunkwiseError(
            f"could not connect to the dask scheduler ({key[0]}): "
            f"{type(error).__name__}{': ' + text[0] if text else ''}"
        )
    return connection


def _close_after(connection: DaskConnection, after: threading.Event | None) -> None:
    if after is not None:
        # A run on the cluster ends first, so that it records "cancelled".
        after.wait(CLOSE_AFTER_SECONDS)
    connection.close()


class _Relay(QObject):
    """Brings a connecting thread's result to the main thread, where it was made."""

    arrived = Signal(object)

    def __init__(self, receive: Callable[[Any], None]) -> None:
        super().__init__()
        self._receive = receive
        # A slot of this object, which lives in the main thread: queued from others.
        self.arrived.connect(self._on_arrived)

    @Slot(object)
    def _on_arrived(self, arrival: Any) -> None:
        self._receive(arrival)
