"""Pressing Run in a real napari viewer: the output layer's parts, reuse, mid-run use.

Timings are the benchmark's (benchmarks/gui_latency.py); these tests check behaviour.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gui import dock, drawn, wait_for_run
from napari.layers import Image
from qtpy.QtCore import QTimer
from scipy import ndimage

from chunkwise._napari import _worker
from chunkwise._napari._insert import insert_in_turns
from chunkwise._napari._live import LiveOutput
from chunkwise._sample import synthetic_ct


@pytest.fixture
def small() -> np.ndarray:
    return synthetic_ct((48, 64, 64), seed=5)


@pytest.fixture
def gate(monkeypatch) -> threading.Event:
    """Holds a run's blocks until the test sets it: the run is "mid-run" till then."""
    opened = threading.Event()
    records = _worker._records

    def gated(run):
        opened.wait(60)
        return (yield from records(run))

    monkeypatch.setattr(_worker, "_records", gated)
    yield opened
    opened.set()


def _drawn(viewer, layer) -> bool:
    """Whether napari has made the layer's visual (private)."""
    return layer in viewer.window._qt_viewer.canvas.layer_to_visual


def _has_panel(viewer, layer) -> bool:
    """Whether napari has made the layer's control panel (private)."""
    return layer in viewer.window._qt_viewer.controls.widgets


def _shows_panel(viewer, layer) -> bool:
    controls = viewer.window._qt_viewer.controls
    return controls.currentWidget() is controls.widgets[layer]


def _counter(emitter) -> list:
    seen: list = []
    emitter.connect(lambda event: seen.append(event.value))
    return seen


class _States:
    """What napari makes of a layer, sampled every millisecond of the event loop."""

    def __init__(self, viewer, layer) -> None:
        self.seen: list = []
        self._viewer, self._layer = viewer, layer
        self._timer = QTimer()
        self._timer.setInterval(1)
        self._timer.timeout.connect(self.note_state)
        self._timer.start()

    def note_state(self) -> None:
        visuals = self._viewer.window._qt_viewer.canvas.layer_to_visual
        if self._layer not in visuals:
            state = "no visual"
        else:
            state = "drawn" if drawn(self._viewer, self._layer) else "hidden"
        self.note(state)

    def note(self, what) -> None:
        if not self.seen or self.seen[-1] != what:
            self.seen.append(what)

    def stop(self) -> list:
        self._timer.stop()
        return self.seen


def test_a_layer_inserted_in_turns_is_built_turn_by_turn(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    first = viewer.add_image(np.zeros((4, 8, 8), "u1"), name="first")
    layer = Image(np.ones((4, 8, 8), "u1"), name="new", contrast_limits=(0, 1))
    hidden = []
    layer.events.visible.connect(lambda _: hidden.append(layer.visible))
    states = _States(viewer, layer)
    insert_in_turns(viewer, layer, then=lambda: states.note("then"))
    assert layer in viewer.layers
    assert viewer.layers.selection.active is first  # the selection stays
    assert not _drawn(viewer, layer)
    qtbot.waitUntil(lambda: "then" in states.seen, timeout=5_000)
    # Each part in a turn of its own: the visual built, mapped hidden, then drawn.
    assert states.stop() == ["no visual", "hidden", "drawn", "then"]
    assert layer.visible and hidden == []  # the layer itself was never hidden
    assert not _has_panel(viewer, layer)  # built once it is needed:
    viewer.layers.selection.active = layer
    assert _shows_panel(viewer, layer)
    viewer.layers.selection.active = first
    assert _shows_panel(viewer, first)


@pytest.mark.parametrize("action", ["select", "remove"])
def test_selecting_or_removing_a_layer_in_turns_builds_it_at_once(
    make_napari_viewer, qtbot, action
):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 8, 8), "u1"), name="first")
    layer = Image(np.ones((4, 8, 8), "u1"), name="new", contrast_limits=(0, 1))
    done = []
    insert_in_turns(viewer, layer, then=lambda: done.append(True))
    if action == "select":
        viewer.layers.selection.active = layer
        assert _drawn(viewer, layer) and layer.visible
        assert _shows_panel(viewer, layer)
    else:
        viewer.layers.remove(layer)
        assert layer not in viewer.layers
    assert done == [True]
    qtbot.wait(20)  # and nothing runs late
    assert done == [True]


def test_run_draws_its_output_next_to_the_input_then_computes(
    make_napari_viewer, qtbot, small
):
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(small, name="ct", scale=(2.0, 1.0, 1.0))
    widget = dock(viewer)
    widget.run_button.clicked.emit()
    output = widget.output_layer
    states = _States(viewer, output)
    widget.stream.worker.started.connect(lambda: states.note("computing"))
    wait_for_run(qtbot, widget)
    # Built, mapped hidden, drawn, then computed: the cores go to napari first.
    assert states.stop()[:4] == ["no visual", "hidden", "drawn", "computing"]
    assert viewer.layers.selection.active is layer  # the input stays selected
    assert viewer.layers.index(output) == viewer.layers.index(layer) + 1
    np.testing.assert_allclose(output.scale, layer.scale)
    np.testing.assert_allclose(output.translate, layer.translate)
    np.testing.assert_array_equal(output.data[:], ndimage.gaussian_filter(small, 1.0))
    assert _drawn(viewer, output) and output.visible


def test_a_rerun_reuses_the_output_layer(make_napari_viewer, qtbot, tmp_path, small):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.output.value = tmp_path / "out.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    first = widget.output_layer
    qtbot.waitUntil(lambda: _drawn(viewer, first), timeout=5_000)
    visual = viewer.window._qt_viewer.canvas.layer_to_visual[first]
    inserted = _counter(viewer.layers.events.inserted)
    removed = _counter(viewer.layers.events.removed)

    widget.ask = lambda *_: "Overwrite"
    widget.steps.steps[0].fields["sigma"].value = 2.0
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.output_layer is first
    assert viewer.layers["ct gaussian"] is first
    assert viewer.window._qt_viewer.canvas.layer_to_visual[first] is visual
    assert inserted == [] and removed == []
    np.testing.assert_array_equal(first.data[:], ndimage.gaussian_filter(small, 2.0))

    # Downsampling changes the output's shape and place: the same layer follows.
    step = widget.steps.steps[0]
    step.op_name.value = "downsample"
    step.fields["factor"].value = 2
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.output_layer is first
    assert first.name == "ct downsample"
    assert first.data.shape == (24, 32, 32)
    np.testing.assert_allclose(first.scale, (2.0, 2.0, 2.0))
    np.testing.assert_allclose(first.translate, (0.5, 0.5, 0.5))
    assert inserted == [] and removed == []

    # A mask is shown as labels: that needs a layer of another kind.
    step.op_name.value = "threshold"
    step.fields["value"].value = 100.0
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.output_layer is not first
    assert first not in viewer.layers
    assert [item.name for item in viewer.layers] == ["ct", "ct threshold"]


def test_the_first_run_shows_its_output_in_the_preview_layer(
    make_napari_viewer, qtbot, small
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.preview.value = True
    qtbot.waitUntil(
        lambda: (
            widget._preview.layer is not None
            and _drawn(viewer, widget._preview.layer)
            and not widget._preview.busy
        ),
        timeout=20_000,
    )
    preview = widget._preview.layer
    visual = viewer.window._qt_viewer.canvas.layer_to_visual[preview]
    inserted = _counter(viewer.layers.events.inserted)
    removed = _counter(viewer.layers.events.removed)

    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    # No new layer: the preview's, built and drawn already, shows the output.
    assert widget.output_layer is preview
    assert viewer.window._qt_viewer.canvas.layer_to_visual[preview] is visual
    assert inserted == [] and removed == []
    assert preview.name == "ct gaussian"
    assert preview.data.shape == small.shape
    np.testing.assert_allclose(preview.translate, (0, 0, 0))
    np.testing.assert_array_equal(preview.data[:], ndimage.gaussian_filter(small, 1.0))

    # The next edit previews in a new layer, above the output.
    widget.steps.steps[0].fields["sigma"].value = 2.0
    qtbot.waitUntil(
        lambda: widget._preview.layer is not None and not widget._preview.busy,
        timeout=20_000,
    )
    again = widget._preview.layer
    assert again is not preview and preview in viewer.layers
    assert viewer.layers.index(again) > viewer.layers.index(preview)


def test_an_output_used_as_the_input_is_kept(make_napari_viewer, qtbot, small):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    smooth = widget.output_layer
    smooth.name = "smooth"  # renamed, it is offered as an input
    widget.input.value = smooth
    widget.steps.steps[0].op_name.value = "invert"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.output_layer is not smooth
    assert [item.name for item in viewer.layers] == ["ct", "smooth", "smooth invert"]
    expected = ndimage.gaussian_filter(small, 1.0)
    np.testing.assert_array_equal(smooth.data[:], expected)
    np.testing.assert_array_equal(widget.output_layer.data[:], np.invert(expected))


_READS: list = []


class _Counted(LiveOutput):
    """A LiveOutput that remembers every read in `_READS`."""

    def __getitem__(self, key):
        _READS.append(key)
        return super().__getitem__(key)

    def __array__(self, dtype=None, copy=None):
        _READS.append("whole array")
        return super().__array__(dtype, copy)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_contrast_limits_are_set_without_reading_the_output(
    make_napari_viewer, qtbot, monkeypatch, small, dtype
):
    from chunkwise._napari import _widget

    monkeypatch.setattr(_widget, "LiveOutput", _Counted)
    _READS.clear()
    viewer = make_napari_viewer()
    data = small.astype(dtype)
    layer = viewer.add_image(data, name="ct", contrast_limits=(10, 200))
    widget = dock(viewer)
    widget.run_button.clicked.emit()
    output = widget.output_layer
    # The input's values, the input's limits: given, not computed by napari.
    assert tuple(output.contrast_limits) == tuple(layer.contrast_limits)
    wait_for_run(qtbot, widget)
    assert _READS, "napari reads the plane in view"
    assert "whole array" not in _READS
    plane = small.shape[1] * small.shape[2]
    for key in _READS:  # a plane at most, never the volume
        assert np.broadcast_to(0, small.shape)[key].size <= plane, key


def test_pressing_run_again_mid_run_starts_nothing(
    make_napari_viewer, qtbot, small, gate
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.run_button.clicked.emit()
    stream, output = widget.stream, widget.output_layer
    assert not widget.run_button.enabled
    qtbot.waitUntil(lambda: _drawn(viewer, output), timeout=5_000)
    widget.run_button.clicked.emit()
    widget.resume_button.clicked.emit()
    qtbot.wait(20)
    assert widget.stream is stream and widget.output_layer is output
    assert [item.name for item in viewer.layers] == ["ct", "ct gaussian"]
    gate.set()
    wait_for_run(qtbot, widget)
    assert widget.run_button.enabled


def test_deleting_the_output_layer_mid_run(make_napari_viewer, qtbot, small, gate):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.chunks.value = "16,32,32"
    widget.run_button.clicked.emit()
    output = widget.output_layer
    qtbot.waitUntil(lambda: _drawn(viewer, output), timeout=5_000)
    viewer.layers.remove(output)
    gate.set()  # blocks land for a layer that is gone
    wait_for_run(qtbot, widget)
    assert "done" in widget.status.value
    assert [item.name for item in viewer.layers] == ["ct"]
    # The next run shows its result again, in a new layer.
    widget.steps.steps[0].op_name.value = "invert"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.output_layer is not output
    assert widget.output_layer in viewer.layers
    np.testing.assert_array_equal(widget.output_layer.data[:], np.invert(small))


def test_moving_the_slider_mid_run_shows_the_new_plane(
    make_napari_viewer, qtbot, small, gate
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.chunks.value = "8,64,64"
    widget.n_jobs.value = 1
    widget.run_button.clicked.emit()
    output = widget.output_layer
    qtbot.waitUntil(lambda: _drawn(viewer, output), timeout=5_000)
    gate.set()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=30_000)
    viewer.dims.set_current_step(0, 41)
    wait_for_run(qtbot, widget)
    expected = ndimage.gaussian_filter(small, 1.0)
    np.testing.assert_array_equal(np.asarray(output._slice.image.raw), expected[41])


def test_closing_the_viewer_before_the_output_is_shown(
    make_napari_viewer, qtbot, small, gate
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.run_button.clicked.emit()
    stream, output = widget.stream, widget.output_layer
    viewer.close()  # before the output layer entered it
    assert stream.run.cancel_token.cancelled
    gate.set()
    qtbot.waitUntil(lambda: not stream.running, timeout=10_000)  # the run ended
    assert output not in viewer.layers
