"""GUI figures in a real napari viewer: preview latency, first chunk, event-loop stalls.

Run headless with ``xvfb-run -a .venv/bin/python benchmarks/gui_latency.py [part ...]``
(parts: ``preview``, ``run``, ``slider``; default all). Prints one JSON line:

- preview_ms: median time from a parameter change to the preview on screen, for a
  512 x 512 plane of a 64 x 512 x 512 volume with gaussian sigma=2 (10 changes);
- first_chunk_s: time from pressing Run to the first refresh of the output layer, on
  the generated 256^3 sample;
- longest_stall_ms: the longest gap between ticks of a 10 ms QTimer during that run,
  from just before pressing Run to its end; split into
- start_stall_ms: the longest gap before the first block lands, itself split into
  - press_stall_ms: until the run's jobs start (pressing Run creates the output and
    its layer, and napari draws the layer), and
  - first_block_stall_ms: while the jobs compute the first blocks;
- streaming_stall_ms: the longest gap from then on, while blocks land;
- rerun_*: the same for a second Run with another sigma, which shows its result in
  the first run's layer;
- after_preview_*: the same for a first Run, in a new viewer, after a preview of the
  plane in view: the output takes over the preview's layer;
- slider_*: during a run (median size 3 on the 256^3 sample, the issue's case),
  the slider is stepped back one plane at a time (within the block in view, so that
  the plane's blocks stay the same), every 150 ms, while blocks land. Per
  step, ``slider_gap_ms`` is the longest gap between ticks of a 5 ms QTimer from
  the step until the next step (the step's own slicing, napari's frame, and the
  refreshes around it), given as p50/p95/max over the steps; ``slider_idle_*``
  are the same steps once the run has ended (the floor of napari's own drawing);
- plane_first_fraction: the fraction of the run's blocks done when every block
  crossing the plane in view at Run was done; view first, it is the plane's share
  of the blocks, ``plane_share`` (in index order it was whatever came before).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from chunkwise._napari._main import dock_widget
from chunkwise._sample import synthetic_ct


def _wait(condition, timeout: float = 120.0) -> None:
    app = QApplication.instance()
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError
        app.processEvents()
        time.sleep(0.001)


def preview_latency(viewer: napari.Viewer) -> float:
    layer = viewer.add_image(synthetic_ct((64, 512, 512)), name="ct512")
    widget = dock_widget(viewer)
    widget.input.value = layer
    widget.preview.value = True
    _wait(lambda: widget._preview.layer is not None)
    times = []
    for i in range(10):
        shown = widget._preview.layer.data.copy()
        began = time.perf_counter()
        widget.steps.steps[0].fields["sigma"].value = 2.0 + 0.01 * (i % 2 + 1)
        _wait(lambda s=shown: not np.array_equal(widget._preview.layer.data, s))
        times.append(time.perf_counter() - began)
    widget.preview.value = False
    viewer.layers.clear()
    # What the user waits for includes the debounce that merges quick edits.
    return statistics.median(times) * 1000


def run_figures(viewer: napari.Viewer) -> dict[str, float]:
    layer = viewer.add_image(synthetic_ct((256, 256, 256)), name="ct256")
    widget = dock_widget(viewer)
    widget.input.value = layer
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    figures = {}
    for prefix, sigma in (("", 2.0), ("rerun_", 1.5)):
        widget.steps.steps[0].fields["sigma"].value = sigma
        for key, value in _run_once(widget, beats).items():
            figures[prefix + key] = round(value, 3 if key.endswith("_s") else 1)
    timer.stop()
    return figures


def preview_run_figures(viewer: napari.Viewer) -> dict[str, float]:
    """A first Run after a preview: the output takes over the preview's layer."""
    layer = viewer.add_image(synthetic_ct((256, 256, 256)), name="ct256")
    widget = dock_widget(viewer)
    widget.input.value = layer
    widget.steps.steps[0].fields["sigma"].value = 2.0
    widget.preview.value = True
    preview = widget._preview
    _wait(lambda: preview.layer is not None and not preview.busy)
    drawn = viewer.window._qt_viewer.layer_to_visual
    _wait(lambda: preview.layer in drawn)
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    figures = {
        f"after_preview_{key}": round(value, 3 if key.endswith("_s") else 1)
        for key, value in _run_once(widget, beats).items()
    }
    timer.stop()
    return figures


def _run_once(widget, beats: list[float]) -> dict[str, float]:
    count = len(beats)
    _wait(lambda: len(beats) >= count + 3)  # so the gap around pressing Run counts
    began = time.perf_counter()
    widget.run_button.clicked.emit()
    landed: list[float] = []
    widget.stream.worker.yielded.connect(lambda _: landed.append(time.perf_counter()))
    _wait(lambda: widget.stream.refreshes >= 1)
    first = time.perf_counter() - began
    _wait(lambda: not widget.stream.running)
    ticks = np.asarray(beats)
    ticks = ticks[int(np.searchsorted(ticks, began)) - 1 :]  # from the last before Run
    gaps, ends = np.diff(ticks) * 1000, ticks[1:]
    # The gap in which the jobs were started still belongs to pressing Run.
    pressed = ends <= ticks[int(np.searchsorted(ticks, widget.stream.started))]
    streaming = ends > landed[0]
    return {
        "first_chunk_s": first,
        "start_stall_ms": gaps[~streaming].max(),
        "press_stall_ms": gaps[pressed].max(),
        "first_block_stall_ms": gaps[~pressed & ~streaming].max(initial=0.0),
        "streaming_stall_ms": gaps[streaming].max(),
    }


def _cautious(title: str, text: str, buttons: tuple[str, ...]) -> str:
    return next((b for b in ("Start over", "Delete") if b in buttons), buttons[-1])


def slider_figures(
    viewer: napari.Viewer, steps: int = 40, every: float = 0.15
) -> dict[str, float]:
    layer = viewer.add_image(synthetic_ct((256, 256, 256)), name="ct256")
    widget = dock_widget(viewer)
    # No dialog may wait: a new run (not an earlier unfinished one), scratch deleted.
    widget.ask = _cautious
    widget.input.value = layer
    widget.steps.steps[0].op_name.value = "median"
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    widget.run_button.clicked.emit()
    order: list[int] = []
    widget.stream.worker.yielded.connect(lambda record: order.append(record.index))
    run = widget.stream.run
    z = viewer.dims.current_step[0]
    plane = {
        i
        for i in range(len(run.plan))
        if run.plan.block(i).box.start[0] <= z < run.plan.block(i).box.stop[0]
    }
    _wait(lambda: widget.stream.refreshes >= 1)
    gaps = _step_gaps(viewer, beats, z, steps, every, lambda: widget.stream.running)
    _wait(lambda: not widget.stream.running, timeout=600)
    # The same steps over the same two layers once the run has ended: the floor.
    idle = _step_gaps(viewer, beats, z, steps, every, lambda: True)
    timer.stop()
    done_at = next(n for n in range(len(order) + 1) if plane <= set(order[:n]))
    figures = {"slider_steps": len(gaps)}
    for name, values in (("slider", gaps), ("slider_idle", idle)):
        for q in (50, 95):
            figures[f"{name}_gap_p{q}_ms"] = round(float(np.percentile(values, q)), 1)
        figures[f"{name}_gap_max_ms"] = round(float(values.max()), 1)
    figures["plane_first_fraction"] = round(done_at / len(run.plan), 3)
    figures["plane_share"] = round(len(plane) / len(run.plan), 3)
    return figures


def _step_gaps(viewer, beats, z, steps, every, going) -> np.ndarray:
    """Per slider step back from ``z``, the longest gap between ticks (ms)."""
    gaps = []
    for step in range(steps):
        if not going():
            break
        began = time.perf_counter()
        viewer.dims.set_current_step(0, z - 1 - step)
        # Until the next step, and at least one tick after this one (a step that
        # takes longer than the interval is one long gap).
        _wait(lambda b=began: time.perf_counter() > b + every and beats[-1] > b)
        window = np.asarray([began, *(t for t in beats if t > began)])
        gaps.append(np.diff(window).max() * 1000)
    return np.asarray(gaps)


def main(parts: list[str]) -> None:
    """Measure ``parts`` ("preview", "run", "slider"; default all); print JSON."""
    parts = parts or ["preview", "run", "slider"]
    figures: dict[str, float] = {}
    if "preview" in parts:
        viewer = napari.Viewer()
        figures["preview_ms"] = round(preview_latency(viewer), 1)
        viewer.close()
    if "run" in parts:
        viewer = napari.Viewer()
        run = run_figures(viewer)
        viewer.close()
        figures["first_chunk_s"] = run.pop("first_chunk_s")
        figures["longest_stall_ms"] = max(
            run["start_stall_ms"], run["streaming_stall_ms"]
        )
        figures.update(run)
        viewer = napari.Viewer()
        figures.update(preview_run_figures(viewer))
        viewer.close()
    if "slider" in parts:
        viewer = napari.Viewer()
        figures.update(slider_figures(viewer))
        viewer.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
