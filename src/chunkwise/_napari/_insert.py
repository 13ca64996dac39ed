"""Adding a layer to napari without building all of it in one event-loop turn.

napari builds all of a new layer when it enters the layer list: the list row, the
vispy visual, the control panel and, as the new layer becomes the selected one, the
panel swap and selection events; the next frame then draws the new visual for the
first time. With software OpenGL on two cores that made one long stall at every Run
(benchmarks/results/gui.md). Here each of those costs gets an event-loop turn of its
own, with input and timers handled in between:

1. the layer enters the list with the selection left as it was, and is sliced;
2. its vispy layer is built;
3. the vispy layer is mapped into the scene, hidden;
4. it is shown, and the frame after draws it for the first time;
5. the caller's ``then`` runs.

Steps 2 and 3 are napari's handler that builds the visual, in two turns (see
`_SplitVisual`); where it cannot be split, the layer enters the list hidden, the
handler runs whole, and then the layer is shown.

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
#: A shorter delay let Qt run the next step before painting the last one, so that
#: a step and a frame made one stall (a frame takes 12-25 ms with software OpenGL).
TURN_MS = 16


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
    split = _SplitVisual.of(visual)
    if split is None:
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
    event = events[0] if events else None
    if event is None:  # napari's handlers never saw it: nothing to build
        steps = [lambda: setattr(layer, "visible", show)]
    elif split is None:
        steps = [lambda: _run(visual, event), lambda: setattr(layer, "visible", show)]
    else:
        steps = split.steps(layer)
    _Steps(layers, event, steps, panel, then)


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
        event: Any,
        steps: list[Callable[[], None]],
        panel: list[Any],
        then: Callable[[], None] | None,
    ) -> None:
        self._layers = layers
        self._event = event  # the insertion event that the held-back handlers missed
        self._panel = panel if event is not None else []
        self._steps = list(steps)
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
        _run(self._panel, self._event)
        self._done()

    def _done(self) -> None:
        if self._hook is not None:
            self._layers.selection.events.changed.disconnect(self._hook)
            self._layers.events.removing.disconnect(self._hook)
            self._hook = None


class _SplitVisual:
    """napari's `QtViewer._add_layer` in three turns rather than one.

    It builds the vispy layer (most of the 35-45 ms it takes on two cores) and maps
    it into the scene, and the frame after draws it for the first time (40 ms with
    software OpenGL). Here: build; map, with the new visual's node hidden; show the
    node, so that its first frame has a turn to itself. The layer itself stays
    visible, so that napari slices it as it is appended, not in the turn that
    draws it. Used where napari has those two functions and its experimental
    polling is off (`of` gives None otherwise).
    """

    def __init__(self, callback: Any, canvas: Any, create: Callable[..., Any]) -> None:
        self._callback = callback
        self._canvas = canvas
        self._create = create
        self._built: Any = None
        self._hidden: Any = None

    @classmethod
    def of(cls, callbacks: list[Any]) -> _SplitVisual | None:
        if len(callbacks) != 1:
            return None
        viewer = callbacks[0][0]()
        canvas = getattr(viewer, "canvas", None)
        try:
            from napari._vispy.utils.visual import create_vispy_layer
        except ImportError:
            return None
        if getattr(viewer, "_qt_poll", None) is not None or not all(
            callable(getattr(canvas, name, None))
            for name in ("font_info", "add_layer_visual_mapping")
        ):
            return None
        return cls(callbacks[0], canvas, create_vispy_layer)

    def steps(self, layer: Layer) -> list[Callable[[], None]]:
        """The three steps, one per turn."""
        return [lambda: self._build(layer), lambda: self._place(layer), self._show]

    def _gone(self) -> bool:
        return _resolve(self._callback) is None  # the viewer is closed

    def _build(self, layer: Layer) -> None:
        if not self._gone():
            self._built = self._create(layer, font_info=self._canvas.font_info())

    def _place(self, layer: Layer) -> None:
        if self._built is not None and not self._gone():
            self._canvas.add_layer_visual_mapping(layer, self._built)
            self._hidden = self._built.node
            self._hidden.visible = False

    def _show(self) -> None:
        if self._built is None or self._hidden is None or self._gone():
            return
        # As napari would have drawn it: visible if the layer is. napari may have
        # swapped the layer's node meanwhile (a tiled one for a bigger image).
        for node in {self._hidden, self._built.node}:
            node.visible = self._built.layer.visible
            node.update()
        self._hidden = None


def _run(callbacks: list[Any], event: Any) -> None:
    """Call napari's held-back handlers with the insertion ``event``."""
    while callbacks:
        handler = _resolve(callbacks.pop(0))
        if handler is not None:  # its viewer may be gone
            handler(event)


def _key(callback: Any) -> tuple[str, str] | None:
    # napari keeps a bound method as (weak reference to its object, method name).
    if not isinstance(callback, tuple) or len(callback) != 2:
        return None
    owner = callback[0]() if isinstance(callback[0], weakref.ref) else None
    return None if owner is None else (type(owner).__name__, callback[1])


def _resolve(callback: tuple[weakref.ref, str]) -> Callable[[Any], None] | None:
    owner = callback[0]()
    return None if owner is None else getattr(owner, callback[1])
