"""Adding a layer to napari without building all of it in one event-loop turn.

napari builds all of a new layer when it enters the layer list: the list row, the
vispy visual, the control panel and, as the new layer becomes the selected one, the
panel swap and selection events; the next frame then draws the new visual for the
first time. With software OpenGL on two cores that made one long stall at every Run
(benchmarks/results/gui.md). Here each of those costs gets an event-loop turn of its
own, with input and timers handled in between:

1. the layer enters the list, hidden, with the selection left as it was;
2. napari's handler that builds the visual runs;
3. the layer is shown, and the frame after draws it;
4. the caller's ``then`` runs.

napari's handler that builds the control panel runs when the panel is needed: when
the selection changes (it may show the layer's panel) or a layer is removed (napari
takes a layer's panel down with it), as napari's experimental dynamic layer controls
do. Either event also runs at once the steps still waiting.

Everything that knows napari's handler names is in this module. If they are not
found (another napari version), the layer's parts are built as it is appended.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QTimer

if TYPE_CHECKING:
    from collections.abc import Callable

    import napari
    from napari.layers import Layer

__all__ = ["insert_in_turns"]

#: napari's handler of `LayerList.events.inserted` that builds the visual.
VISUAL = ("QtViewer", "_on_add_layer_change")

#: napari's handler of `LayerList.events.inserted` that builds the control panel.
#: Neither needs the other; napari's scene graph skips layers without a visual
#: until they have one.
PANEL = ("QtLayerControlsContainer", "_add")

#: Delay between the steps: the turns between them handle input, timers and paint.
TURN_MS = 1


def insert_in_turns(
    viewer: napari.Viewer, layer: Layer, then: Callable[[], None] | None = None
) -> None:
    """Append ``layer`` to ``viewer`` without selecting it, its parts in later turns.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer (or a plugin's proxy of it).
    layer : napari.layers.Layer
        A layer not in the viewer yet. It is in ``viewer.layers`` on return; it is
        built and shown over the next event-loop turns, and its control panel is
        built when the selection changes or a layer is removed.
    then : callable, optional
        Called in a turn of its own once the layer has been drawn.
    """
    layers = viewer.layers
    inserted = layers.events.inserted
    visual = [cb for cb in inserted.callbacks if _key(cb) == VISUAL]
    panel = [cb for cb in inserted.callbacks if _key(cb) == PANEL]
    handlers = [_resolve(cb) for cb in visual + panel]
    events: list[Any] = []
    show = layer.visible
    layer.visible = False  # drawn for the first time in a turn of its own
    inserted.connect(events.append)
    for handler in handlers:
        inserted.block(handler)
    try:
        _append_unselected(layers, layer)
    finally:
        for handler in handlers:
            inserted.unblock(handler)
        inserted.disconnect(events.append)
    _Steps(layers, layer, events[0] if events else None, visual, panel, show, then)


def _append_unselected(layers: Any, layer: Layer) -> None:
    # napari selects a new layer; the selection changes back before anyone hears.
    selection = layers.selection
    active, selected = selection.active, set(selection)
    with selection.events.blocker_all():
        layers.append(layer)
        if active is not None:
            selection.active = active
        else:
            selection.clear()
            selection.update(selected)


class _Steps:
    """The rest of one insertion: a step per event-loop turn, the panel on demand."""

    def __init__(
        self,
        layers: Any,
        layer: Layer,
        event: Any,
        visual: list[Any],
        panel: list[Any],
        show: bool,
        then: Callable[[], None] | None,
    ) -> None:
        self._layers = layers
        self._layer = layer
        self._event = event  # the insertion event that the held-back handlers missed
        self._panel = panel if event is not None else []
        self._steps: list[Callable[[], None]] = [
            lambda: self._run(visual if event is not None else []),
            lambda: setattr(layer, "visible", show),
        ]
        if then is not None:
            self._steps.append(then)
        # napari and PyQt hold bound methods weakly: the lambdas keep self alive.
        self._hook: Callable[[Any], None] | None = lambda _: self.finish()
        layers.selection.events.changed.connect(self._hook, position="first")
        layers.events.removing.connect(self._hook, position="first")
        QTimer.singleShot(TURN_MS, lambda: self._next())

    def _next(self) -> None:
        if self._steps:
            self._steps.pop(0)()
        if self._steps:
            QTimer.singleShot(TURN_MS, lambda: self._next())
        elif not self._panel:
            self._done()

    def finish(self) -> None:
        """Take every step still waiting and build the panel, now."""
        while self._steps:
            self._steps.pop(0)()
        self._run(self._panel)
        self._done()

    def _run(self, callbacks: list[Any]) -> None:
        while callbacks:
            handler = _resolve(callbacks.pop(0))
            if handler is not None:  # its viewer may be gone
                handler(self._event)

    def _done(self) -> None:
        if self._hook is not None:
            self._layers.selection.events.changed.disconnect(self._hook)
            self._layers.events.removing.disconnect(self._hook)
            self._hook = None


def _key(callback: Any) -> tuple[str, str] | None:
    # napari keeps a bound method as (weak reference to its object, method name).
    if not isinstance(callback, tuple) or len(callback) != 2:
        return None
    owner = callback[0]() if isinstance(callback[0], weakref.ref) else None
    return None if owner is None else (type(owner).__name__, callback[1])


def _resolve(callback: tuple[weakref.ref, str]) -> Callable[[Any], None] | None:
    owner = callback[0]()
    return None if owner is None else getattr(owner, callback[1])
