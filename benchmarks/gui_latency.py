"""GUI figures in a real napari viewer: preview latency, first chunk, event-loop stalls.

Run headless with ``xvfb-run -a .venv/bin/python benchmarks/gui_latency.py``. Prints
one JSON line:

- preview_ms: median time from a parameter change to the preview on screen, for a
  512 x 512 plane of a 64 x 512 x 512 volume with gaussian sigma=2 (10 changes);
- first_chunk_s: time from pressing Run to the first refresh of the output layer, on
  the generated 256^3 sample;
- longest_stall_ms: the longest gap between ticks of a 10 ms QTimer during that run,
  from just before pressing Run to its end; split into
- start_stall_ms: the longest gap before the first block lands (pressing Run creates
  the output and its layer, and the first frame draws it), and
- streaming_stall_ms: the longest gap from then on, while blocks land.
"""

from __future__ import annotations

import json
import statistics
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


def run_figures(viewer: napari.Viewer) -> tuple[float, float, float]:
    layer = viewer.add_image(synthetic_ct((256, 256, 256)), name="ct256")
    widget = dock_widget(viewer)
    widget.input.value = layer
    widget.steps.steps[0].fields["sigma"].value = 2.0
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    _wait(lambda: len(beats) >= 3)  # so the gap around pressing Run counts too
    began = time.perf_counter()
    widget.run_button.clicked.emit()
    landed: list[float] = []
    widget.stream.worker.yielded.connect(lambda _: landed.append(time.perf_counter()))
    _wait(lambda: widget.stream.refreshes >= 1)
    first = time.perf_counter() - began
    _wait(lambda: not widget.stream.running)
    timer.stop()
    beats = np.asarray(beats)
    ticks = beats[int(np.searchsorted(beats, began)) - 1 :]  # from the last before Run
    ends = ticks[1:]
    gaps = np.diff(ticks) * 1000
    streaming = ends > landed[0]
    return first, float(gaps[~streaming].max()), float(gaps[streaming].max())


def main() -> None:
    """Measure and print the figures as JSON."""
    viewer = napari.Viewer()
    preview = preview_latency(viewer)
    viewer.close()
    viewer = napari.Viewer()
    first, start_stall, streaming_stall = run_figures(viewer)
    viewer.close()
    print(
        json.dumps(
            {
                "preview_ms": round(preview, 1),
                "first_chunk_s": round(first, 3),
                "longest_stall_ms": round(max(start_stall, streaming_stall), 1),
                "start_stall_ms": round(start_stall, 1),
                "streaming_stall_ms": round(streaming_stall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
