"""The "Process volume" dock widget: gathers choices and hands them to the engine.

It owns no processing logic: operations come from `chunkwise.ops`, previews from
`chunkwise.compute_region`, runs from `chunkwise.iter_process`.
"""

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import napari
import numpy as np
import zarr
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from psygnal import Signal
from qtpy.QtCore import QEvent, QObject, QThread, QTimer
from qtpy.QtWidgets import QMessageBox
from superqt.utils import qdebounced

import chunkwise
from chunkwise._executors import BACKENDS
from chunkwise._napari._cluster import LOCAL, SchedulerLink
from chunkwise._napari._compare import SideBySide
from chunkwise._napari._focus import view_priority
from chunkwise._napari._form import ChainEditor, section
from chunkwise._napari._insert import TURN_MS, insert_in_turns
from chunkwise._napari._layers import (
    blending_steps,
    bounding_input_region,
    camera_of,
    data_limits,
    is_labels_result,
    labels_limits,
    layer_axes,
    layer_operation,
    layer_source,
    output_geometry,
    same_values,
    spatial_count,
    view_input_region,
)
from chunkwise._napari._lifecycle import RunLifecycle
from chunkwise._napari._live import LiveOutput, LivePyramid
from chunkwise._napari._preview import NAME as PREVIEW_NAME
from chunkwise._napari._preview import PREVIEW_PIXELS, PlanePreview
from chunkwise._napari._recipes import RecipeMenu
from chunkwise._napari._save import choose_zarr, default_name, replace_store
from chunkwise._napari._sequence import LayerSequence
from chunkwise._napari._status import StatusLine, progress_text
from chunkwise._napari._worker import RunStream
from chunkwise._napari._writer import LAYER_ATTRIBUTE, layer_record
from chunkwise._store import CODECS

__all__ = ["ProcessWidget"]

#: Debounce for parameter edits and slider moves before a preview is computed: long
#: enough to merge a spin-box burst, short next to the ~50 ms a 512² plane takes.
PREVIEW_DEBOUNCE_MS = 60

#: The region choices besides the Shapes and Points layers.
WHOLE, VIEW = "whole volume", "current view"
#: How far below napari's the run's job threads are scheduled (see `chunkwise.process`).
RUN_NICENESS = 10

#: Seconds between status texts during a run (throughput, time left).
STATUS_INTERVAL = 0.5

#: What each backend is, for the backend choice's tooltip.
BACKEND_TIPS = {
    "threading": "threads in napari's process; suits scipy filters, which release "
    "the GIL",
    "loky": "processes on this machine, for custom functions that hold the GIL",
    "dask": "a dask.distributed cluster, started on this machine or running at a "
    "scheduler address (see scheduler); its workers write the output themselves, "
    "so it must be a path they all see",
}
#: What "jobs" counts, per backend.
JOBS_TIPS = {
    "dask": "With a local cluster: its worker processes, one thread each. With a "
    "scheduler address: at most this many blocks at once on that cluster.",
}
JOBS_TIP = "blocks computed at the same time (default: all cores)"
#: Most jobs a cluster may take: its worker threads are not this machine's cores.
CLUSTER_JOBS = 4096


class ProcessWidget(RunLifecycle, Container):
    """Tune an operation on the plane in view, then run it over the whole volume."""

    #: Emitted once a Run is over, with None or the error that ended it or that
    #: kept it from starting (run on several layers waits for it).
    run_ended = Signal(object)

    # napari gives the viewer by this runtime annotation (no postponed annotations).
    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self._preview = PlanePreview(viewer)
        self._preview_note = ""
        self._form_note = ""
        self._output_name: str | None = None
        self.stream: RunStream | None = None
        self.output_layer: Image | Labels | None = None
        self.input = ComboBox(label="input", choices=self._input_layers)
        self.steps = ChainEditor()
        self.preview = CheckBox(value=False, text="Preview the plane in view")
        self.preview_size = SpinBox(
            label="preview size",
            value=math.isqrt(PREVIEW_PIXELS),
            min=256,
            max=16384,
            step=256,
        )
        self.preview_size.tooltip = (
            "The preview computes at most this x this output pixels: the view, "
            "or its centre when the view shows more"
        )
        self.output = FileEdit(label="output", mode="w", filter="*.zarr", nullable=True)
        self.format = ComboBox(
            label="format",
            choices=[("Zarr array", "zarr"), ("OME-Zarr with pyramid", "ome-zarr")],
            value="zarr",
        )
        self.format.tooltip = (
            "OME-Zarr: an image whose pyramid is built during the run, shown "
            "multiscale, with the input's scale and translation recorded so that "
            "other OME-Zarr readers place it on the input (the default for an "
            "output ending in .ome.zarr)"
        )
        self.output.tooltip = (
            "Zarr store to write; empty: a scratch store to save later with "
            '"Save result as…"'
        )
        # A store is a folder: a file dialog would enter an existing one.
        self.output.choose_btn.changed.disconnect()
        self.output.choose_btn.text = "Choose…"
        self.output.choose_btn.changed.connect(self._on_choose_output)
        self.zarr_format = ComboBox(label="Zarr format", choices=(3, 2), value=3)
        self.zarr_format.tooltip = (
            "Zarr v3 (OME-Zarr 0.5) or v2 (OME-Zarr 0.4, for older readers)"
        )
        self.codec = ComboBox(label="codec", choices=CODECS, value="zstd")
        self.codec.tooltip = "compression of the output chunks"
        self.chunks = LineEdit(label="chunks", value="")
        self.chunks.tooltip = "output chunk shape such as 64,64,64 (empty: the input's)"
        self.level = SpinBox(label="input level", value=0, min=0, max=0)
        self.level.tooltip = (
            "For a pyramid: the level to process (0, full resolution; a coarser "
            "one for a quick draft of the whole volume)"
        )
        self.region = ComboBox(label="region", choices=self._regions)
        self.region.tooltip = (
            "What Run computes: the whole volume, the output chunks under the "
            "current view (this slab), or under a Shapes or Points layer's box. "
            "Resume, with another region or the whole volume, finishes the rest."
        )
        self.n_jobs = SpinBox(
            label="jobs", value=joblib.cpu_count(), min=1, max=joblib.cpu_count() * 4
        )
        self.n_jobs.tooltip = JOBS_TIP
        self.backend = ComboBox(label="backend", choices=BACKENDS)
        self.backend.tooltip = "\n".join(
            f"{name}: {BACKEND_TIPS.get(name, name)}" for name in BACKENDS
        )
        self.scheduler = LineEdit(label="scheduler", value="")
        self.scheduler.native.setPlaceholderText(f"{LOCAL}, or tcp://host:8786")
        self.scheduler.tooltip = (
            f"Empty or {LOCAL}: start a dask cluster on this machine, one worker "
            "process per job; or the address of a running scheduler, such as "
            "tcp://host:8786. Connected in the background when Run is pressed, "
            "kept for the next runs, and closed with the dock."
        )
        self._link = SchedulerLink(nice=RUN_NICENESS)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.resume_button = PushButton(text="Resume", enabled=False)
        self.save_button = PushButton(text="Save result as…", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=1)
        # A long status (a path) wraps or elides and never widens the dock: a wider
        # dock resizes napari's canvas, a full redraw on the event loop.
        self.status = StatusLine()
        self.compare = CheckBox(
            value=False, text="Compare input and output side by side"
        )
        buttons = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.run_button, self.cancel_button, self.resume_button],
        )
        self.recipes = RecipeMenu(self)
        buttons.append(self.recipes.button)
        self.sequence = LayerSequence(self)
        self.recipes.menu.addSeparator()
        self.sequence.attach(self.recipes.menu)
        self.output_section = section(
            "Output",
            [
                self.output,
                self.format,
                self.zarr_format,
                self.codec,
                self.chunks,
                self.n_jobs,
                self.backend,
                self.scheduler,
            ],
        )
        self.extend(
            [
                self.input,
                self.steps,
                self.level,
                self.preview,
                self.preview_size,
                self.region,
                self.output_section,
                buttons,
                self.progress,
                self.status,
                self.sequence.note,
                self.save_button,
                self.compare,
            ]
        )
        self._scratch: Path | None = None
        self._save_folder: Path | None = None
        #: Asks for a .zarr path: (title, suggested) -> path or None; tests replace it.
        self.choose_path = lambda title, suggested: choose_zarr(
            self.native, title, suggested
        )
        self._side_by_side = SideBySide(viewer)
        self._closed = False
        self._schedule_preview = qdebounced(self._update_preview, PREVIEW_DEBOUNCE_MS)
        self._schedule_priority = qdebounced(self._reprioritise, PREVIEW_DEBOUNCE_MS)
        #: Asks the user; tests replace it. Takes (title, text, buttons) -> answer.
        self.ask = _ask
        self._init_lifecycle()

        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        for emitter in self._view_events():
            emitter.connect(self._on_view_changed)
        # The viewer outlives a closed dock widget: stop listening when it goes.
        # napari's close button only unparents the widget, so watch for that too.
        self.native.destroyed.connect(self._disconnect_viewer)
        self._undock_filter = _Undocked(self._disconnect_viewer)
        self.native.installEventFilter(self._undock_filter)
        self.input.changed.connect(self._on_input_changed)
        self.steps.changed.connect(self._on_form_changed)
        self.preview.changed.connect(self._on_preview_toggled)
        self.preview_size.changed.connect(self._on_preview_size)
        self.level.changed.connect(self._on_view_changed)
        self.run_button.changed.connect(self._on_run)
        self.cancel_button.changed.connect(self._on_cancel)
        self.resume_button.changed.connect(lambda: self._on_run(resume=True))
        self.save_button.changed.connect(self._on_save)
        self.compare.changed.connect(self._on_compare)
        self.output.changed.connect(self._on_output_chosen)
        self.backend.changed.connect(self._on_backend_changed)
        self._on_backend_changed(self.backend.value)
        self._on_input_changed(self.input.value)

    # --- choices ---------------------------------------------------------------
    def _input_layers(self, _: Any = None) -> list[Image | Labels]:
        # Plugins see layers through napari's proxies: compare names, not identity.
        # Known before the layers exist, so they never flash into the choices.
        ours = {PREVIEW_NAME, self._output_name}
        return [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, Image | Labels) and layer.name not in ours
        ]

    def _view_events(self) -> tuple[Any, ...]:
        # What changes the part of the plane in view: the slider, the axis order,
        # 2D/3D, pan and zoom, and the canvas size (napari < 0.9 has no canvas model).
        dims = self._viewer.dims.events
        camera = camera_of(self._viewer).events
        canvas = getattr(self._viewer, "canvas", None)
        sized = () if canvas is None else (canvas.events.size,)
        return (
            dims.current_step,
            dims.order,
            dims.ndisplay,
            camera.center,
            camera.zoom,
            *sized,
        )

    def _disconnect_viewer(self, *_: Any) -> None:
        if self._closed:
            return
        self._closed = True
        self.sequence.close()
        self._schedule_preview.cancel()
        self._preview.close()
        if self._link.waiting:
            self._forget_new_scratch()  # its run never started: nothing to ask
        self._end_run_for_close()
        # Once the run on it has recorded how it ended.
        self._link.close(after=None if self.stream is None else self.stream.over)
        events = self._viewer.layers.events
        events.inserted.disconnect(self._on_layers_changed)
        events.removed.disconnect(self._on_layers_changed)
        events.removing.disconnect(self._on_layer_removing)
        events.removed.disconnect(self._on_layer_removed)
        for emitter in self._view_events():
            emitter.disconnect(self._on_view_changed)

    def _on_layers_changed(self, _: Any = None) -> None:
        self.input.reset_choices()
        self.region.reset_choices()

    def _on_backend_changed(self, backend: str) -> None:
        cluster = backend == "dask"
        self.scheduler.visible = cluster
        self.n_jobs.tooltip = JOBS_TIPS.get(backend, JOBS_TIP)
        self.n_jobs.max = CLUSTER_JOBS if cluster else joblib.cpu_count() * 4

    def _on_input_changed(self, layer: Image | Labels | None) -> None:
        levels = len(layer.data) if layer is not None and layer.multiscale else 1
        if layer is not None:
            self.steps.ndim = spatial_count(layer)
        self.level.max = levels - 1
        self.level.value = min(self.level.value, levels - 1)
        self.level.enabled = levels > 1
        # Start required parameters where the data is, so they are tuned by eye.
        if isinstance(layer, Image):
            low, high = (float(v) for v in layer.contrast_limits)
            self.steps.hints.update(
                lo=low, hi=high, value=(low + high) / 2, in_range=(low, high)
            )
        self._on_form_changed()

    def operation(self) -> chunkwise.ops.Operation:
        """The operation as the form stands (validated by the engine).

        On the input's space axes: an RGB image is processed colour by colour.
        """
        op = self.steps.operation()
        layer = self.input.value
        return op if layer is None else layer_operation(layer, op)

    def _labels_confirmed(self, layer: Image | Labels, op: Any) -> bool:
        """Whether to run ``op``: on Labels, one that blends IDs runs if confirmed."""
        blending = blending_steps(layer, op)
        if not blending:
            return True
        answer = self.ask(
            "Labels",
            f"{layer.name} holds labels, and {', '.join(blending)} blends label IDs "
            "into values that are no label (between IDs 2 and 4 lies 3, another "
            "cell). The result will be an image. Run anyway?",
            ("Run anyway", "Cancel"),
        )
        return answer == "Run anyway"

    # --- preview -----------------------------------------------------------------
    def _on_preview_toggled(self, on: bool) -> None:
        if on:
            self._update_preview()
        else:
            self._preview.close()

    def _on_view_changed(self, *_: Any) -> None:
        if self.stream is not None and self.stream.running:
            self._schedule_priority()
        if self.preview.value:
            self._raise_preview()
            self._schedule_preview()

    def _on_form_changed(self, *_: Any) -> None:
        # A value the operation refuses is said at once, not clamped or dropped.
        layer = self.input.value
        try:
            op = self.operation()
            if layer is not None:
                op.check_shape(layer_source(layer, self.level.value).shape)
        except chunkwise.ChunkwiseError as error:
            self._note_form(f"not valid: {error}")
        else:
            self._note_form("")
        self._on_view_changed()

    def _note_form(self, text: str) -> None:
        # Like preview notes: a valid form clears only its own message.
        if text or self.status.value == self._form_note:
            self.status.show(text)
        self._form_note = text

    def _raise_preview(self) -> None:
        """Keep the preview above an earlier output, so parameter changes show."""
        shown = self._preview.layer
        # Plugins see layers through napari's proxies: compare names, not identity.
        names = [layer.name for layer in self._viewer.layers]
        if shown is not None and shown.name in names[:-1]:
            self._viewer.layers.move(names.index(shown.name), len(names))

    def _on_preview_size(self, side: int) -> None:
        self._preview.budget = side * side
        self._on_view_changed()

    def _update_preview(self) -> None:
        if self._closed or not self.preview.value:
            return
        if self.stream is not None and self.stream.running:
            return  # the run's output is shown: a preview over it would hide it
        layer = self.input.value
        if layer is None:
            self._preview.close()  # its input is gone
            return
        if self._viewer.dims.ndisplay != 2:
            self._note_preview("preview shows planes: switch to the 2D view")
            return
        try:
            op = self.operation()
            view = self._preview.request(layer, op, self.level.value)
        except chunkwise.ChunkwiseError as error:
            self._note_preview(str(error))
            self._preview.close()  # it showed parameters that are no longer there
            return
        if view is None:
            self._note_preview("preview: the view shows none of the input")
        elif view.partial:
            height, width = view.size
            self._note_preview(
                f"The preview covers only the centre of the view ({height} x "
                f"{width} pixels); zoom in to see more."
            )
        elif blending := blending_steps(layer, op):
            self._note_preview(
                f"preview: {', '.join(blending)} blends label IDs; the result is an "
                "image, not labels"
            )
        else:
            self._note_preview("")

    def _note_preview(self, text: str) -> None:
        # The status line is shared with runs: a preview clears only its own notes.
        if text or self.status.value == self._preview_note:
            self.status.value = text
        self._preview_note = text

    # --- run ---------------------------------------------------------------------
    def _placement(self, layer: Image | Labels) -> dict[str, Any]:
        """The input's place in napari's world, for an OME-Zarr output to record."""
        if self.format.value != "ome-zarr":
            return {}  # a plain array records it for the plugin's reader
        place = output_geometry(layer, chunkwise.ops.copy(), self.level.value)
        scale, translation = place.data_placement()
        return {"scale": scale, "translation": translation}

    def _regions(self, _: Any = None) -> list[str]:
        marks = [
            layer.name
            for layer in self._viewer.layers
            if isinstance(layer, Shapes | Points)
        ]
        return [WHOLE, VIEW, *marks]

    def _region_of(self, layer: Image | Labels) -> tuple[slice, ...] | None:
        """The input region Run computes (None: all of it)."""
        choice = self.region.value
        if choice in (None, WHOLE):
            return None
        if choice == VIEW:
            region = view_input_region(self._viewer, layer)
        elif choice in self._viewer.layers:
            region = bounding_input_region(self._viewer.layers[choice], layer)
        else:
            raise chunkwise.ChunkwiseError(f"the region layer {choice!r} is gone")
        if region is None:
            raise chunkwise.ChunkwiseError(f"the region ({choice}) misses the input")
        return region

    def _suggested_path(self) -> Path:
        """Where a chooser starts: the last folder, and ``<input>-<op>.zarr``."""
        layer = self.input.value
        folder = self._save_folder or Path.home()
        try:
            op = self.operation()
        except chunkwise.ChunkwiseError:
            return folder / "result.zarr"
        ome = self.format.value == "ome-zarr"
        name = "input" if layer is None else layer.name
        return folder / default_name(name, op, ome=ome)

    def _on_choose_output(self) -> None:
        path = self.choose_path("Output Zarr store", self._suggested_path())
        if path is not None:
            self._save_folder = path.parent
            self.output.value = path

    def _on_output_chosen(self, path: Any) -> None:
        # As on the command line: an output named .ome.zarr is an OME-Zarr image.
        if path is not None and str(path).rstrip("/").endswith(".ome.zarr"):
            self.format.value = "ome-zarr"

    def _existing_choice(self, path: Path) -> str | None:
        """For an existing output: "overwrite", "resume", or None to stop."""
        if not path.exists():
            return "new"
        status = chunkwise.output_status(path)
        if status is not None and not status.finished:
            answer = self.ask(
                "Output exists",
                f"{path} holds an unfinished run ({status}). Resume or overwrite it?",
                ("Resume", "Overwrite", "Cancel"),
            )
        else:
            answer = self.ask(
                "Output exists",
                f"{path} exists. Overwrite it?",
                ("Overwrite", "Cancel"),
            )
        return {"Resume": "resume", "Overwrite": "overwrite"}.get(answer)

    def _on_run(self, resume: bool = False, op: Any = None) -> None:
        layer = self.input.value
        if layer is None:
            show_error("choose an input layer first")
            return
        if self._busy:
            return
        try:
            op = self.operation() if op is None else op
            if not (resume or self._labels_confirmed(layer, op)):
                return
            if resume:
                target, choice = self._last_target, "resume"
            else:
                target, choice = self._target_and_choice(layer, op)
            if choice is None:
                return
            options = self._run_options(layer, choice)
        except (chunkwise.ChunkwiseError, OSError) as error:
            self._refused(error)
            return
        if options["backend"] == "dask":
            self._connect_then_run(layer, op, target, options)
        else:
            self._launch(layer, op, target, options)

    @property
    def _busy(self) -> bool:
        """Whether a run is going, or waits for its cluster."""
        return (self.stream is not None and self.stream.running) or self._link.waiting

    def _run_options(self, layer: Image | Labels, choice: str) -> dict[str, Any]:
        """`chunkwise.iter_process`'s options as the form stands, bar ``scheduler``."""
        return {
            "n_jobs": self.n_jobs.value,
            "backend": self.backend.value,
            "chunks": _parse_chunks(self.chunks.value),
            "zarr_format": self.zarr_format.value,
            "codec": self.codec.value,
            "format": self.format.value,
            "region": self._region_of(layer),
            "overwrite": choice == "overwrite",
            "resume": choice == "resume",
            **self._placement(layer),
            "axes": layer_axes(layer),
            # The jobs yield the cores to napari's event loop and rendering.
            "nice": RUN_NICENESS,
            # What is in view first; `_reprioritise` follows the view.
            "priority": self._view_priority(layer),
        }

    def _connect_then_run(
        self, layer: Image | Labels, op: Any, target: Path, options: dict[str, Any]
    ) -> None:
        """Connect to the dask scheduler off the main thread, then run on it."""
        scheduler = self.scheduler.value.strip() or LOCAL
        jobs = options["n_jobs"]
        if not self._link.connected(scheduler, jobs):
            self.status.value = (
                f"starting a dask cluster of {jobs} worker processes on this machine…"
                if scheduler == LOCAL
                else f"connecting to the dask scheduler at {scheduler}…"
            )
        self._watch_window_close()  # closing napari meanwhile closes the cluster
        self._idle_buttons = (self.resume_button.enabled, self.save_button.enabled)
        self._set_running(True)  # Cancel stops waiting

        def ready(client: Any) -> None:
            if layer not in self._viewer.layers:
                self._not_started("the input layer was removed: nothing was run")
                return
            self._idle()
            self.status.value = ""
            self._launch(layer, op, target, {**options, "scheduler": client})

        def failed(message: str) -> None:
            self._not_started(f"failed: {message}")
            show_error(message)

        # A local cluster starts at RUN_NICENESS already, and the cores of a
        # remote one are not napari's: its jobs keep their priority.
        options["nice"] = 0
        self._link.connect(scheduler, jobs, ready, failed)

    def _idle(self) -> None:
        """The buttons as they were before Run waited for the cluster."""
        self._set_running(False)
        self.resume_button.enabled, self.save_button.enabled = self._idle_buttons

    def _not_started(self, text: str) -> None:
        """A run waiting for its cluster will not start: say why."""
        self._idle()
        self._forget_new_scratch()
        self.status.value = text
        self.run_ended.emit(chunkwise.ChunkwiseError(text))

    def _refused(self, error: BaseException) -> None:
        """Run cannot start: say why."""
        self._forget_new_scratch()
        show_error(str(error))
        self.run_ended.emit(error)

    def _launch(
        self, layer: Image | Labels, op: Any, target: Path, options: dict[str, Any]
    ) -> None:
        """Start the run and show its output as it streams in."""
        try:
            run = chunkwise.iter_process(
                layer_source(layer, self.level.value), op, target, **options
            )
        except (chunkwise.ChunkwiseError, OSError) as error:
            self._refused(error)
            return
        self._last_target = target
        self._started_run(layer, op, target)
        # Blocks are computed once napari has drawn the output layer: until then the
        # event loop has the cores to itself (benchmarks/results/gui.md).
        live = self._show_output(layer, op, run, then=self._start_stream)
        self.stream = RunStream(
            run, self.output_layer, self._on_progress, self._on_end, live=live
        )
        self.stream.worker.yielded.connect(live.landed)  # shows what is done
        self._show_progress(run.done_at_start, len(run.plan))
        self.status.show(f"running: {len(run.plan)} blocks into {target}", target)
        self._set_running(True)

    def _start_stream(self) -> None:
        self.stream.start()
        self._replace_scratch()

    def _view_priority(self, layer: Image | Labels) -> list[tuple[slice, ...]]:
        try:
            return view_priority(self._viewer, layer, self.level.value)
        except (ValueError, IndexError):
            return []  # a view napari is still setting up: index order

    def _reprioritise(self) -> None:
        if self._closed:  # Qt may have deleted the form
            return
        stream, layer = self.stream, self.input.value
        if stream is None or not stream.running or layer is None:
            return
        # Cheap: the run records the new focus; its own thread reorders the rest.
        with contextlib.suppress(chunkwise.ChunkwiseError):
            stream.run.prioritise(*self._view_priority(layer))

    def _show_output(
        self,
        layer: Image | Labels,
        op: Any,
        run: chunkwise.Run,
        then: Callable[[], None],
    ) -> LiveOutput | LivePyramid:
        """Show ``run``'s output in a layer; ``then()`` once napari has drawn it.

        Returns what the layer shows while the run streams.
        """
        geometry = output_geometry(layer, op, self.level.value)
        name = self._output_name = f"{layer.name} {op.name}"
        kind = "labels" if is_labels_result(layer, op) else "image"
        kwargs = {
            "name": name,
            "scale": geometry.scale,
            "translate": geometry.translate,
        }
        blended = kind == "image" and isinstance(layer, Labels)
        if blended:
            # A blend of label IDs lies within them; a first block of background
            # would give 0 to 1, and the result would look like a mask.
            kwargs["contrast_limits"] = labels_limits(self._viewer, layer)
        elif kind == "image":
            # Given, so that napari does not compute them from the data.
            kwargs["contrast_limits"] = _contrast_limits(layer, run.output)
        if kind == "image" and getattr(layer, "rgb", False):
            kwargs["rgb"] = True  # processed colour by colour; shown as colours
        # The run's stream reads the view for napari; a new output starts empty,
        # and an image shows the input through what is not computed yet.
        see_through = kind == "image" and not kwargs.get("rgb", False)
        live: LiveOutput | LivePyramid
        if run.target.multiscale:
            live = LivePyramid.of_run(run, transparent=see_through)
            kwargs["multiscale"] = True
        else:
            live = LiveOutput.of_run(run, transparent=see_through)
        old = self._previous_output(layer)
        if old is None and not run.target.multiscale:
            # The preview's layer is built and drawn already: it becomes the output.
            old = self._preview.hand_over(lambda shown: _can_show(shown, kind, live))
        # A new layer is napari's costliest step of a Run: reuse the last one.
        reuse = not run.target.multiscale and _can_show(old, kind, live)
        if reuse:
            shown = old
        else:
            data = live.levels if isinstance(live, LivePyramid) else live
            shown = (Labels if kind == "labels" else Image)(data, cache=False, **kwargs)
        self.output_layer = shown

        def show() -> None:
            # In a turn after this one, which has enough to do already.
            if self._closed:
                then()  # the viewer is gone; the run is cancelled and must end
            elif reuse:
                _refill(shown, live, kwargs)
                QTimer.singleShot(TURN_MS, then)  # after the frame that shows it
            else:
                if old is not None:
                    self._viewer.layers.remove(old)
                insert_in_turns(self._viewer, shown, then=then)

        QTimer.singleShot(TURN_MS, show)
        # Where the result lies, for the plugin's reader when it is opened again.
        run.output.update_attributes({LAYER_ATTRIBUTE: layer_record(kwargs, kind)})
        kwargs.pop("multiscale", None)
        self._first_record = True
        # Limits not taken from the input are guessed from the first block.
        self._auto_contrast = (
            kind == "image" and not blended and not same_values(layer, run.output)
        )
        return live

    def _previous_output(self, source: Image | Labels) -> Image | Labels | None:
        """The last run's output layer if it is still shown and is not ``source``."""
        shown = self.output_layer
        if shown is None or shown not in self._viewer.layers or shown == source:
            return None
        return shown

    def _on_progress(self, record: chunkwise.BlockDone) -> None:
        self._show_progress(record.done)
        stream = self.stream
        if self._first_record:
            self._written = 0
            self._status_shown = 0.0
        # Measured over the blocks done, at their real size (edge blocks are smaller).
        self._written += record.box.size * stream.run.plan.dtype.itemsize
        now = time.perf_counter()
        if now - self._status_shown >= STATUS_INTERVAL or record.done == record.total:
            # A new text lays the wrapping status line out again, and the dock with
            # it: at most every STATUS_INTERVAL, not at every block (the bar shows
            # every block).
            self._status_shown = now
            self.status.show(
                progress_text(
                    record.done,
                    record.total,
                    record.done - stream.run.done_at_start,
                    self._written,
                    now - stream.started,
                ),
                self._last_target,
            )
        if self._first_record and self.output_layer is not None:
            self._first_record = False
            if self._auto_contrast:
                # A block's worth of decoding: off the main thread, like the view.
                worker = create_worker(
                    _block_limits, stream.run.output, record.box.slices
                )
                worker.returned.connect(self._on_block_limits)
                worker.start()

    def _show_progress(self, done: int, total: int | None = None) -> None:
        # QProgressBar repaints at once when its text changes, and with napari's GL
        # canvas in the window that repaint took 17-35 ms of a run's event loop;
        # with updates off it is merged into the next frame instead.
        bar = self.progress.native
        bar.setUpdatesEnabled(False)
        if total is not None:
            self.progress.max = total
        self.progress.value = done
        bar.setUpdatesEnabled(True)

    def _on_block_limits(self, limits: tuple[float, float]) -> None:
        if self.output_layer is not None and not self._closed:
            self.output_layer.contrast_limits = limits

    def _on_end(self, error: BaseException | None) -> None:
        self._set_running(False)
        if error is None and self.stream.run.wanted is not None:
            self.status.show(
                f"region done: {self._last_target}; Resume with another region, "
                "or the whole volume, to finish it",
                self._last_target,
            )
            self.resume_button.enabled = True
            self.save_button.enabled = self._scratch is not None
        elif error is None:
            self.status.show(f"done: {self._last_target}", self._last_target)
            self.resume_button.enabled = False
            self.save_button.enabled = self._scratch is not None
        elif isinstance(error, chunkwise.Cancelled):
            # The error says "cancelled after n of m blocks; resume to finish".
            self.status.show(str(error), self._last_target)
            self.resume_button.enabled = True
        else:
            self.status.value = f"failed: {type(error).__name__}: {error}"
            self.resume_button.enabled = True
            show_error(str(error))
        self.run_ended.emit(error)

    def _on_cancel(self) -> None:
        if self._link.waiting:
            self._link.cancel()
            self._not_started("cancelled before the run started: nothing was written")
        elif self.stream is not None:
            self.stream.cancel()
            self.status.value = "cancelling: finishing the blocks in flight…"

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running
        if running:
            self.resume_button.enabled = False
            self.save_button.enabled = False

    def _on_save(self) -> None:
        if self._scratch is None:
            return
        suggested = self._suggested_path().with_name(self._scratch.name)
        path = self.choose_path("Save result as", suggested)
        if path is not None:
            self._save_folder = path.parent
            self.save_scratch(path)

    def save_scratch(self, path: Path) -> bool:
        """Keep the scratch result at ``path``, asking before replacing a store.

        Returns whether it was saved.
        """
        if path.exists():
            answer = self.ask(
                "Replace?", f"{path} exists. Replace it?", ("Replace", "Cancel")
            )
            if answer != "Replace":
                return False
        try:
            replace_store(self._scratch, path)
        except (chunkwise.ChunkwiseError, OSError) as error:
            show_error(str(error))
            return False
        self._scratches.saved(self._scratch, path)
        self.status.show(f"saved: {path}", path)
        show_info(f"saved {path}")
        return True

    # --- compare -------------------------------------------------------------------
    def _on_compare(self, on: bool) -> None:
        layer, output = self.input.value, self.output_layer
        if on:
            if layer is None or output is None:
                show_error("run an operation first: compare shows input and output")
                self.compare.value = False
                return
            self._side_by_side.start(layer, output)
        else:
            self._side_by_side.stop()


class _Undocked(QObject):
    """Calls ``on_undocked`` once the watched widget loses its parent (closed)."""

    def __init__(self, on_undocked: Any) -> None:
        super().__init__()
        self._on_undocked = on_undocked

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange and watched.parent() is None:
            self._on_undocked()
        return False


def _grid(viewer: napari.viewer.Viewer) -> Any:
    # napari 0.9 moved the grid to the canvas model.
    return viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid


def _can_show(layer: Image | Labels | None, kind: str, data: LiveOutput) -> bool:
    """Whether ``layer`` can show ``data`` as a layer of ``kind`` would."""
    return (
        layer is not None
        and isinstance(layer, Labels) == (kind == "labels")
        and not layer.multiscale
        and layer.ndim == data.ndim
    )


def _refill(layer: Image | Labels, data: LiveOutput, kwargs: dict[str, Any]) -> None:
    """Show ``data`` in ``layer``, placed and named by ``kwargs``."""
    # Setting the scale or translation re-slices the layer (7 ms for a preview's
    # layer taken over), and so does the new data: placed first without slicing
    # (napari's private switch, where it has one), then sliced once, with the data.
    hold = getattr(layer, "_block_refresh", contextlib.nullcontext)
    with hold():
        for key in ("scale", "translate"):
            if not np.array_equal(getattr(layer, key), kwargs[key]):
                setattr(layer, key, kwargs[key])
    layer.data = data
    layer.name = kwargs["name"]
    limits = kwargs.get("contrast_limits")
    if limits is not None:
        # As a new layer would have them: the slider spans the limits.
        layer.contrast_limits_range = limits
        layer.contrast_limits = limits


def _parse_chunks(text: str) -> tuple[int, ...] | None:
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise chunkwise.ChunkwiseError(
            f"chunks must be integers like 64,64,64, got {text!r}"
        ) from None


def _block_limits(output: zarr.Array, slices: tuple[slice, ...]) -> tuple[float, float]:
    return data_limits(np.asarray(output[slices]))


def _contrast_limits(layer: Image | Labels, output: zarr.Array) -> tuple[float, float]:
    if same_values(layer, output):
        return tuple(layer.contrast_limits)
    if output.dtype.kind in "ui":
        info = np.iinfo(output.dtype)
        return (float(info.min), float(info.max))
    return (0.0, 1.0)


def _ask(title: str, text: str, buttons: tuple[str, ...]) -> str:
    if QThread.currentThread().loopLevel() == 0:
        # No event loop: a script drives napari (`chunkwise view --screenshot`,
        # a benchmark), and nobody would ever click. The last button is the safe
        # one ("Cancel", "Keep").
        return buttons[-1]
    box = QMessageBox()
    box.setWindowTitle(title)
    box.setText(text)
    added = {
        box.addButton(label, QMessageBox.ButtonRole.AcceptRole): label
        for label in buttons
    }
    box.exec()
    return added.get(box.clickedButton(), "Cancel")
