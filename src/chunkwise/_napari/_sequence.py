"""Run the form's settings on every selected layer, one after another.

Each layer is run as Run runs it (`ProcessWidget._on_run`), with the steps as they
stood when the sequence started: off the main thread, streamed into an output layer
of its own, into a scratch store (or, when the form names an output, a store named
after the layer beside it). A layer that fails or
is removed while it waits does not stop the others; Cancel stops the sequence
after the run in progress; closing the dock ends it. The widget's ``run_ended``
says when each run is over.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Label
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QMenu, QSizePolicy

import chunkwise
from chunkwise._napari._layers import layer_operation
from chunkwise._napari._recipes import one_line
from chunkwise._napari._save import default_name

if TYPE_CHECKING:
    from chunkwise._napari._widget import ProcessWidget

__all__ = ["LayerSequence"]

#: Lines of the per-layer list shown at most.
NOTE_LINES = 6

DONE, FAILED, SKIPPED, WAITING, RUNNING = (
    "done",
    "failed",
    "skipped",
    "waiting",
    "running",
)


class LayerSequence:
    """Runs ``widget``'s form on a list of layers in turn; ``note`` shows each one."""

    def __init__(self, widget: ProcessWidget) -> None:
        self._widget = widget
        self.note = Label(value="", visible=False)
        self.note.native.setWordWrap(True)
        self.note.native.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        #: Each layer's name and what became of it, in the order they run.
        self.outcomes: dict[str, str] = {}
        self._queue: list[str] = []
        self._active = False
        self._current: str | None = None
        self._op: chunkwise.ops.Operation | None = None
        self._cancelled = False
        self._output: Any = None
        self._input: Any = None
        widget.run_ended.connect(self._on_run_ended)
        widget.cancel_button.changed.connect(self._on_cancel)

    def attach(self, menu: QMenu) -> None:
        """Add "Run on selected layers (N)" to ``menu``, N counted as it opens."""
        self.action = menu.addAction("Run on selected layers")
        self.action.setToolTip(
            "Run the steps and output settings on each selected layer in turn, "
            "each into an output layer of its own"
        )
        self.action.triggered.connect(lambda: self.start())
        menu.aboutToShow.connect(self._on_menu)

    def _on_menu(self) -> None:
        count = len(self.selected())
        self.action.setText(f"Run on selected layers ({count})")
        self.action.setEnabled(count > 0 and not (self.running or self._widget._busy))

    @property
    def running(self) -> bool:
        """Whether a sequence is under way."""
        return self._active

    def selected(self) -> list[str]:
        """The names of the selected layers Run can take, in the layer list's order."""
        widget = self._widget
        chosen = {layer.name for layer in widget._viewer.layers.selection}
        return [
            layer.name
            for layer in widget._input_layers()
            if layer.name in chosen and isinstance(layer, Image | Labels)
        ]

    def start(self, names: list[str] | None = None) -> None:
        """Run the form on the layers ``names`` (default: the selected ones)."""
        widget = self._widget
        if self.running or widget._busy:
            widget.status.show("a run is going: cancel it first")
            return
        names = self.selected() if names is None else list(names)
        if not names:
            widget.status.show("select the image or labels layers to run on")
            return
        try:
            # The steps as they stand now run on every layer, whatever is edited
            # meanwhile.
            self._op = widget.steps.operation()
        except chunkwise.ChunkwiseError as error:
            widget.status.show(f"not valid: {one_line(error)}")
            return
        self.outcomes = dict.fromkeys(names, WAITING)
        self._queue = list(names)
        self._cancelled = False
        self._input = widget.input.value
        self._output = widget.output.value
        self.note.visible = True
        self._active = True
        self._next()

    def close(self) -> None:
        """The dock is closing: its run is cancelled, and nothing more runs."""
        if self._current is not None:
            self.outcomes[self._current] = "cancelled: the dock was closed"
        for name in self._queue:
            self.outcomes[name] = f"{SKIPPED}: the dock was closed"
        self._current = None
        self._queue.clear()
        self._active = False

    def _on_cancel(self) -> None:
        if self.running:
            self._cancelled = True

    def _next(self) -> None:
        widget = self._widget
        if widget._closed:
            return  # the dock is gone: `close` ended the sequence
        if self._cancelled or not self._queue:
            self._finish()
            return
        name = self._queue.pop(0)
        if name not in widget._viewer.layers:
            self._ended(name, f"{SKIPPED}: the layer was removed")
            return
        layer = widget._viewer.layers[name]
        self._current = name
        self.outcomes[name] = RUNNING
        self._show()
        widget.output_layer = None  # its own output layer, not the last one's
        try:
            widget.input.value = layer
            op = layer_operation(layer, self._op)
        except (ValueError, chunkwise.ChunkwiseError) as error:
            self._ended(name, f"{FAILED}: {one_line(error)}")
            return
        if self._output is not None and str(self._output) not in ("", "."):
            folder = Path(self._output).parent
            ome = widget.format.value == "ome-zarr"
            widget.output.value = folder / default_name(name, op, ome=ome)
        widget._on_run(op=op)
        if self._current == name and not widget._busy:
            self._ended(name, f"{SKIPPED}: not started")

    def _on_run_ended(self, error: BaseException | None) -> None:
        name = self._current
        if name is None:
            if not self._active:
                self.note.visible = False  # a Run of its own: the list is old
            return
        if error is None:
            self._ended(name, DONE)
        elif self._cancelled:
            self._ended(name, "cancelled")
        elif isinstance(error, chunkwise.Cancelled):
            self._ended(name, f"{FAILED}: its layer was removed mid-run")
        else:
            self._ended(name, f"{FAILED}: {one_line(error)}")

    def _ended(self, name: str, outcome: str) -> None:
        self._current = None
        self.outcomes[name] = outcome
        self._show()
        # In a turn of its own: the run that ended is still reporting in this one.
        QTimer.singleShot(0, self._next)

    def _finish(self) -> None:
        widget = self._widget
        self._active = False
        self._current = None
        for name in self._queue:
            self.outcomes[name] = f"{SKIPPED}: cancelled before it ran"
        self._queue.clear()
        self._show()
        widget.output.value = self._output
        if self._input is not None and self._input.name in widget._viewer.layers:
            widget.input.value = self._input
        count = len(self.outcomes)
        done = sum(outcome == DONE for outcome in self.outcomes.values())
        failed = [n for n, o in self.outcomes.items() if o.startswith(FAILED)]
        summary = f"{done} of {count} layers done"
        if failed:
            summary += f"; failed: {', '.join(failed)}"
        if self._cancelled:
            summary += "; cancelled"
        widget.status.show(summary)
        (show_error if failed else show_info)(summary)

    def _show(self) -> None:
        lines = [
            f"{index}. {name}: {outcome}"
            for index, (name, outcome) in enumerate(self.outcomes.items(), start=1)
        ]
        # A long list shows the lines up to the layer running: the dock stays short.
        ended = sum(outcome != WAITING for outcome in self.outcomes.values())
        start = max(0, min(ended, len(lines)) - NOTE_LINES)
        shown = lines[start : start + NOTE_LINES]
        if start + NOTE_LINES < len(lines):
            shown.append(f"… {len(lines) - start - NOTE_LINES} more waiting")
        self.note.value = "\n".join(shown)
