"""A run's life around the user: layers removed mid-run, closing, resume, scratch.

`ProcessWidget` takes these from `RunLifecycle`; they use its form (``input``,
``level``, ``output``, ``format``, ``chunks``), its ``stream``, ``output_layer``,
``status``, ``progress`` and ``ask``, and its ``_busy``, ``_scratch`` and
``_last_target``.

- Removing the run's input layer cancels the run before napari removes the layer,
  and removing either layer stops the streaming refresh for good (removing the
  output layer lets the run go on): napari (vispy) can crash when a layer
  refreshes while another is removed, so removing any layer pauses the refresh.
- Closing the dock or napari cancels the run and waits (boundedly) for it to write
  "cancelled", then offers to delete the unsaved scratch results. A kept unfinished
  result's layer is renamed to say it is cancelled and partial.
- Run offers to resume an unfinished run of the same input and operation, found in
  the recent runs list, which survives restarts (`_recent`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, FileEdit, Label
from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QSizePolicy
from superqt.utils import qdebounced

import chunkwise
from chunkwise._napari import _recent
from chunkwise._napari._form import section
from chunkwise._napari._layers import layer_source
from chunkwise._napari._scratch import (
    ScratchOutputs,
    exit_question,
    human_size,
    is_scratch,
    stores_shown,
)
from chunkwise._napari._worker import CLOSE_WAIT_SECONDS

if TYPE_CHECKING:
    from napari.layers import Image, Labels

    from chunkwise._napari._recent import RecentRun

__all__ = ["RunLifecycle"]

#: Starts the Qt property set on the napari window whose closing a widget watches.
_WATCHED = "chunkwise-watched"
#: The estimate waits for a pause in typing: it samples the input's chunks.
ESTIMATE_DEBOUNCE_MS = 250

#: Delay before the recent-runs list is read again after Run: past the output's
#: first frames.
RECENT_REFRESH_MS = 500


class RunLifecycle:
    """What `ProcessWidget` does around a run; see the module's docstring."""

    def _init_lifecycle(self) -> None:
        viewer = self._viewer
        self._scratches = ScratchOutputs()
        self._run_input: str | None = None
        self.scratch_dir = FileEdit(
            label="scratch folder", mode="d", value=tempfile.gettempdir()
        )
        self.scratch_dir.tooltip = (
            "Where runs without an output write (one folder per run); a new run "
            "replaces the last unsaved result, and closing offers to delete them"
        )
        self.size_note = Label(value="")
        # Like the status line: it wraps, and never widens the dock (nor shrinks
        # napari's canvas).
        self.size_note.native.setWordWrap(True)
        self.size_note.native.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        self.size_note.tooltip = (
            "The output's size: uncompressed, and on disk if it compresses like "
            "the input"
        )
        self.recent = _recent.RecentRuns(self._on_resume_recent, self._on_open_recent)
        self._place_lifecycle_widgets()
        self._schedule_estimate = qdebounced(
            self._update_estimate, ESTIMATE_DEBOUNCE_MS
        )
        for widget in (self.input, self.steps, self.level, self.chunks, self.output):
            widget.changed.connect(self._schedule_estimate)
        self.scratch_dir.changed.connect(self._schedule_estimate)
        viewer.layers.events.removing.connect(self._on_layer_removing)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self._closing_filter = _WindowClosing(self._close_runs)
        self._update_estimate()

    def _place_lifecycle_widgets(self) -> None:
        # In the folded Output section, whose title carries the size: the dock
        # grows by nothing, and napari's canvas keeps its size.
        panel = Container(
            labels=True, widgets=[self.size_note, self.scratch_dir, self.recent]
        )
        panel.margins = (0, 0, 0, 0)
        panel.native.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        folding = getattr(getattr(self, "output_section", None), "collapsible", None)
        if folding is None:
            self.append(section("Scratch and recent runs", [panel]))
            self._size_title = None
        else:
            folding.addWidget(panel.native)
            self._size_title = (folding, folding.text())
        self._lifecycle_panel = panel

    def _title_size(self, size: str, text: str) -> None:
        """Show ``size`` in the folded section's title, ``text`` in its tooltip."""
        if self._size_title is None:
            return
        folding, title = self._size_title
        folding.setText(f"{title} · {size}" if size else title)
        folding.setToolTip(text)

    def _watch_window_close(self) -> None:
        """Catch napari's window closing, before any layer or canvas goes.

        Plain Qt on the dock's top-level window (plugins may not reach napari's
        private window API; the dock's `destroyed` comes after the canvas is gone).
        Called as runs start: by then the dock sits in the window, and only a run
        leaves something to end or tidy.
        """
        window = self.native.window()
        # Marked on the window itself: a reference to it would keep napari's
        # viewer alive after it closed.
        mark = f"{_WATCHED}-{id(self)}"
        if window is not self.native and not window.property(mark):
            window.setProperty(mark, True)
            window.installEventFilter(self._closing_filter)

    # --- layers removed mid-run ---------------------------------------------------
    def _on_layer_removed(self, _: Any = None) -> None:
        # Quiet again from when napari has finished: on two busy cores a removal
        # can take longer than the quiet that began as it started.
        if self.stream is not None and self.stream.running:
            self.stream.pause_refresh()

    def _on_layer_removing(self, event: Any) -> None:
        stream = self.stream
        if stream is None or not stream.running:
            return
        name = self._viewer.layers[event.index].name
        output = self.output_layer
        stream.pause_refresh()
        if name == self._run_input:
            stream.cancel()
            stream.forget_layer()
            self.status.show(
                "input layer removed: the run is cancelled; its finished blocks stay",
                self._last_target,
            )
        elif output is not None and name == output.name:
            stream.forget_layer()
            self.output_layer = None
            self.status.show(
                f"output layer removed: the run continues into {self._last_target} "
                "(Cancel stops it)",
                self._last_target,
            )

    # --- Run: resume or start over, and where ----------------------------------------
    def _target_and_choice(
        self, layer: Image | Labels, op: Any
    ) -> tuple[Path | None, str | None]:
        """Where Run writes and how ("new", "resume", "overwrite"; None: stop)."""
        chosen = self.output.value
        if chosen is not None and str(chosen) not in ("", "."):
            self._scratch = None
            target = Path(chosen)
            return target, self._existing_choice(target)
        found = self._unfinished_run(layer, op)
        if found is not None:
            path, status = found
            answer = self.ask(
                "Unfinished run",
                f"An unfinished {op.name} of {layer.name} ({status}) is at {path}.\n"
                "Resume it, or start over in a new scratch folder?",
                ("Resume", "Start over", "Cancel"),
            )
            if answer == "Resume":
                self._scratch = path if is_scratch(path) else None
                self._scratches.adopt(path)
                return path, "resume"
            if answer != "Start over":
                return None, None
        suffix = ".ome.zarr" if self.format.value == "ome-zarr" else ".zarr"
        name = f"{layer.name}-{op.name}{suffix}".replace("/", "-")
        self._scratch = self._scratches.new(self.scratch_dir.value, name)
        return self._scratch, "new"

    def _unfinished_run(
        self, layer: Image | Labels, op: Any
    ) -> tuple[Path, chunkwise.Status] | None:
        """The newest unfinished run of ``op`` over ``layer`` that Run can resume."""
        source = layer_source(layer, self.level.value)
        last = getattr(self, "_last_target", None)
        paths = [Path(run.path) for run in _recent.load()]
        if last is not None:
            paths.insert(0, last)
        for path in dict.fromkeys(paths):
            status = chunkwise.resumable(path, source, op)
            # "running": another napari's live run holds it.
            if status is not None and status is not chunkwise.Status.RUNNING:
                return path, status
        return None

    def _forget_new_scratch(self) -> None:
        """Drop the scratch folder of a run that did not start."""
        if self._scratch is not None and not self._scratch.exists():
            self._scratches.drop(self._scratch)

    def _started_run(self, layer: Image | Labels, op: Any, target: Path) -> None:
        self._watch_window_close()
        self._run_input = layer.name
        _recent.remember(target, layer.name, op.name, scratch=self._scratch is not None)
        # Reading the listed runs' status takes ~10 ms: not in the Run click's turn,
        # nor in the turns that show the output.
        QTimer.singleShot(RECENT_REFRESH_MS, self._refresh_recent)

    def _refresh_recent(self) -> None:
        if not self._closed:
            with contextlib.suppress(RuntimeError):  # Qt deleted the form
                self.recent.refresh()

    def _replace_scratch(self) -> None:
        """Delete earlier unsaved scratch results now that the new run is shown."""
        if self._closed:
            return  # closing asks about them
        shown = stores_shown(self._viewer.layers)
        dropped = self._scratches.replace(self._last_target, shown, background=True)
        for path in dropped:
            _recent.forget(path)
        if dropped:
            # Like `_started_run`'s: not in a turn that starts the run.
            QTimer.singleShot(RECENT_REFRESH_MS, self._refresh_recent)

    # --- size ---------------------------------------------------------------------
    def _update_estimate(self, *_: Any) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # Qt deleted the form: napari closed
            self._show_estimate()

    def _show_estimate(self) -> None:
        layer = self.input.value
        if layer is None:
            self.size_note.value = ""
            self._title_size("", "")
            return
        try:
            estimate = chunkwise.estimate_output(
                layer_source(layer, self.level.value),
                self.operation(),
                chunks=_chunks(self.chunks.value),
            )
        except (chunkwise.ChunkwiseError, ValueError):
            self.size_note.value = ""
            self._title_size("", "")
            return
        chosen = self.output.value
        explicit = chosen is not None and str(chosen) not in ("", ".")
        folder = Path(chosen).parent if explicit else Path(self.scratch_dir.value)
        text = (
            f"output ≈ {human_size(estimate.stored)} on disk "
            f"({human_size(estimate.uncompressed)} uncompressed)"
        )
        size = f"≈ {human_size(estimate.stored)}"
        free = _free_bytes(folder)
        if free is not None:
            text += f"; {human_size(free)} free in {folder}"
            if estimate.stored > free:
                text += " — not enough space"
                size += ", not enough space"
        self.size_note.value = text
        self._title_size(size, text)

    # --- closing -------------------------------------------------------------------
    def _close_runs(self) -> bool:
        """End the run and tidy up: the dock or napari is closing."""
        self._disconnect_viewer()
        return True

    def _end_run_for_close(self) -> None:
        """Cancel a running run and wait (boundedly) until it wrote "cancelled"."""
        self._schedule_estimate.cancel()
        stream = self.stream
        if stream is not None and stream.running:
            if not stream.detach(wait=CLOSE_WAIT_SECONDS):
                show_error(
                    f"the run into {self._last_target} is still finishing its blocks "
                    "in flight; its store says so until they end"
                )
            self._mark_partial()
        elif stream is not None:
            stream.detach()
        self._offer_cleanup()
        with contextlib.suppress(RuntimeError):  # Qt may have deleted the panel
            self.recent.refresh()

    def _mark_partial(self) -> None:
        """Rename the unfinished output's layer so that it says so."""
        layer = self.output_layer
        if layer is None or layer not in self._viewer.layers:
            return
        with contextlib.suppress(RuntimeError):  # Qt may have deleted the bar
            done = 100 * self.progress.value // max(self.progress.max, 1)
            layer.name = f"{layer.name} (cancelled, {done}% computed)"

    def _offer_cleanup(self) -> None:
        """Ask whether to delete the unsaved scratch results; delete them if so."""
        paths = self._scratches.unsaved()
        if not paths:
            return
        answer = self.ask(
            "Scratch results",
            exit_question(paths, self._scratches.copies),
            ("Delete", "Keep"),
        )
        if answer != "Delete":
            return
        layers = self._viewer.layers
        for layer in list(layers):
            if stores_shown([layer]) & set(paths):
                layers.remove(layer)
        for path in paths:
            self._scratches.drop(path)
            _recent.forget(path)

    # --- recent runs ---------------------------------------------------------------
    def _on_resume_recent(self, run: RecentRun) -> None:
        if self._busy:
            show_error("a run is going: cancel it first")
            return
        path = Path(run.path)
        op = chunkwise.recorded_operation(path)
        match = None if op is None else self._input_of(path, op)
        if match is None:
            show_error(f"open the input of this run first ({run.input}), then resume")
            return
        layer, level = match
        self.input.value = layer
        self.level.value = level
        self.format.value = "ome-zarr" if run.path.endswith(".ome.zarr") else "zarr"
        self._scratch = path if is_scratch(path) else None
        self._scratches.adopt(path)
        self._last_target = path
        self._on_run(resume=True, op=op)

    def _input_of(self, path: Path, op: Any) -> tuple[Any, int] | None:
        """The open layer (and level) whose data the run into ``path`` reads."""
        for layer in self._input_layers():
            levels = len(layer.data) if layer.multiscale else 1
            for level in range(levels):
                source = layer_source(layer, level)
                if chunkwise.resumable(path, source, op) is not None:
                    return layer, level
        return None

    def _on_open_recent(self, run: RecentRun) -> None:
        try:
            self._viewer.open(run.path, plugin="chunkwise")
        except Exception as error:  # napari raises what the reader raised
            show_error(f"cannot open {run.path}: {error}")


class _WindowClosing(QObject):
    """Calls ``on_close()`` when the watched window closes, before it goes.

    A close by program (`Viewer.close`) always goes through. A close by the user
    may still be refused (napari asks while tasks run): it has gone through once
    the window hides in the same turn of the event loop.
    """

    def __init__(self, on_close: Any) -> None:
        super().__init__()
        self._on_close = on_close
        self._pending = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Close and not event.spontaneous():
            self._on_close()
        elif kind == QEvent.Type.Close:
            self._pending = True
            QTimer.singleShot(0, self._refused)
        elif kind == QEvent.Type.Hide and self._pending and not event.spontaneous():
            self._pending = False
            self._on_close()
        return False

    def _refused(self) -> None:
        self._pending = False


def _chunks(text: str) -> tuple[int, ...] | None:
    text = text.strip()
    return tuple(int(v) for v in text.split(",")) if text else None


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
