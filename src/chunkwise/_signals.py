"""Signals as interrupts, for the command line (standard library only).

The ``chunkwise`` console script installs these before anything else loads, so a
Ctrl-C at any moment after Python hands over (even while zarr, numpy and scipy
load) ends the command with one line and the exit code a shell expects.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

#: The signals that stop a command: as Ctrl-C does, with 128 + their number.
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP")
    if hasattr(signal, name)
)

#: What each signal did before chunkwise took it over.
_previous: dict[int, object] = {}
#: Signals received while held (see `hold`); None: a signal raises at once.
_held: list[int] | None = None


class Interrupted(KeyboardInterrupt):
    """A signal asked the command to stop; handled as Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    # A second signal of the same kind acts as it would have without chunkwise.
    signal.signal(signum, _previous.pop(signum, signal.SIG_DFL))
    if _held is not None:
        _held.append(signum)
        return
    raise Interrupted(signum)


def hold() -> None:
    """Keep signals from raising until `release`: code outside any try runs now.

    The console script's own lines run between importing chunkwise and calling
    its ``main``; a signal there would end in a traceback.
    """
    global _held
    _held = []


def release() -> None:
    """Raise `Interrupted` for the first signal held since `hold`, if any."""
    global _held
    held, _held = _held, None
    if held:
        raise Interrupted(held[0])


def signals_as_interrupts() -> Callable[[], None]:
    """Make SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread.

    A run then stops as on Ctrl-C: the output is marked cancelled and can be
    resumed. Signals the caller ignores (``nohup``) stay ignored, and a signal
    already taken over is left as it is (the console script takes them first).
    Returns the function that puts back what this call replaced.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    replaced = []
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is signal.SIG_IGN or handler is _interrupt:
            continue
        _previous[signum] = handler if handler is not None else signal.SIG_DFL
        signal.signal(signum, _interrupt)
        replaced.append(signum)

    def restore() -> None:
        for signum in replaced:
            if signal.getsignal(signum) is _interrupt:
                signal.signal(signum, _previous.pop(signum, signal.SIG_DFL))

    return restore


def ignore_stop_signals() -> None:
    """Ignore the stop signals from now on (the command is over and has reported)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def report_stop(stop: BaseException, hint: str = "") -> int:
    """Say on stderr that the command was stopped; return 128 + the signal number."""
    import sys

    signum = getattr(stop, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    print(f"chunkwise: cancelled ({name}){hint}", file=sys.stderr)
    return 128 + signum
