"""What the widget tests do as a user would: dock the widget, wait for a run."""

from __future__ import annotations


def dock(viewer):
    """Open the widget as a user does: from the plugin's manifest."""
    _, widget = viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")
    return widget


def wait_for_run(qtbot, widget, timeout: int = 120_000) -> None:
    """Wait until the widget's run has ended (on 2 shared cores: generous)."""
    qtbot.waitUntil(
        lambda: widget.stream is not None and not widget.stream.running, timeout=timeout
    )


def drawn(viewer, layer) -> bool:
    """Whether napari draws ``layer`` now (private: its visual is built and shown).

    A layer inserted in turns (`chunkwise._napari._insert`) is in the layer list at
    once and drawn a few event-loop turns later.
    """
    visual = viewer.window._qt_viewer.canvas.layer_to_visual.get(layer)
    return visual is not None and bool(visual.node.visible)


def hold_runs(monkeypatch, after_cancel: float = 0.0):
    """Hold each run of the widget after its first block until the event is set.

    A cancelled run goes on after ``after_cancel`` seconds (the time its blocks in
    flight would take). Returns the event; set it to let the runs go.
    """
    import threading
    import time

    from chunkwise._napari import _worker

    release = threading.Event()
    records = _worker._records

    def held(run):
        inner = records(run)
        yield next(inner)
        while not release.wait(0.02):
            if run.cancel_token.cancelled:
                time.sleep(after_cancel)
                break
        return (yield from inner)

    monkeypatch.setattr(_worker, "_records", held)
    return release
