"""GUI figures in a real napari viewer: preview latency, first chunk, event-loop stalls.

Run headless with ``xvfb-run -a .venv/bin/python benchmarks/gui_latency.py [part ...]``
(parts: ``preview``, ``run``; default both). Prints one JSON line:

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
  the first run's layer.
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


def main(parts: list[str]) -> None:
    """Measure ``parts`` ("preview", "run"; default both) and print them as JSON."""
    parts = parts or ["preview", "run"]
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
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
