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
