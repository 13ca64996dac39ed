"""What a user does mid-run, in a real napari viewer: remove layers, close, run again.

Each test holds a real run after its first block (the ``hold`` fixture), so that
"mid-run" does not depend on how fast this machine is, then reads the store back
with the engine.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from gui import hold_runs
from scipy import ndimage

import chunkwise
from chunkwise import Status
from chunkwise._napari import _recent
from chunkwise._sample import synthetic_ct

#: How long a cancelled run's blocks in flight take to finish, in the ``hold``.
IN_FLIGHT_SECONDS = 1.0


@pytest.fixture
def volume() -> np.ndarray:
    return synthetic_ct((64, 64, 64), seed=7)


@pytest.fixture
def hold(monkeypatch) -> threading.Event:
    """Holds a run after its first block until set, or until the run is cancelled.

    Blocks in flight finish after a cancel: here the hold stands for them.
    """
    release = hold_runs(monkeypatch, IN_FLIGHT_SECONDS)
    yield release
    release.set()


def _dock(viewer):
    return viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")


def _start(widget, qtbot, op="gaussian", output=None):
    """Run ``op`` with 16³ blocks (64 of them) and wait for its first block."""
    widget.steps.steps[0].op_name.value = op
    widget.chunks.value = "16,16,16"
    widget.n_jobs.value = 1
    if output is not None:
        widget.output.value = output
    widget.run_button.clicked.emit()
    stream = widget.stream
    qtbot.waitUntil(
        lambda: stream._started and widget.progress.value >= 1, timeout=120_000
    )
    return stream


def _wait_end(qtbot, stream):
    qtbot.waitUntil(lambda: not stream.running, timeout=120_000)


def test_removing_the_input_cancels_the_run_before_the_layer_goes(
    make_napari_viewer, qtbot, tmp_path, volume, hold
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    target = tmp_path / "out.zarr"
    stream = _start(widget, qtbot, output=target)
    seen = []
    viewer.layers.events.removed.connect(
        lambda event: seen.append(
            (stream.run.cancel_token.cancelled, stream._layer_gone)
        )
    )
    viewer.layers.remove("ct")
    assert seen == [(True, True)]  # cancelled and refresh stopped, then removed
    refreshes = stream.refreshes
    _wait_end(qtbot, stream)
    assert chunkwise.output_status(target) is Status.CANCELLED
    assert stream.refreshes == refreshes
    assert "cancelled" in widget.status.value
    # The unfinished result stays shown, and napari can still draw the viewer.
    assert widget.output_layer in viewer.layers
    viewer.dims.set_current_step(0, 5)
    qtbot.wait(50)


def test_removing_the_output_layer_stops_its_refresh_and_the_run_finishes(
    make_napari_viewer, qtbot, tmp_path, volume, hold
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    target = tmp_path / "out.zarr"
    stream = _start(widget, qtbot, output=target)
    output_name = widget.output_layer.name
    viewer.layers.remove(output_name)
    assert stream._layer_gone
    assert "continues" in widget.status.value
    refreshes = stream.refreshes
    hold.set()
    _wait_end(qtbot, stream)
    assert chunkwise.output_status(target) is Status.COMPLETE
    np.testing.assert_array_equal(
        zarr.open_array(target, mode="r")[:], ndimage.gaussian_filter(volume, 1.0)
    )
    assert stream.refreshes == refreshes
    assert output_name not in viewer.layers  # not brought back behind the user
    assert [layer.name for layer in viewer.layers] == ["ct"]


def test_removing_another_layer_pauses_the_refresh_and_the_run_goes_on(
    make_napari_viewer, qtbot, tmp_path, volume, hold
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    viewer.add_points([[1, 2, 3]], name="marks")
    _, widget = _dock(viewer)
    target = tmp_path / "out.zarr"
    stream = _start(widget, qtbot, output=target)
    seen = []
    viewer.layers.events.removed.connect(
        lambda event: seen.append(
            (stream.refresh_paused, stream.run.cancel_token.cancelled)
        )
    )
    viewer.layers.remove("marks")
    assert seen == [(True, False)]  # no refresh while napari removed it
    hold.set()
    _wait_end(qtbot, stream)
    assert chunkwise.output_status(target) is Status.COMPLETE
    assert widget.output_layer.data is stream.live.final  # the layer was not lost


def test_closing_the_viewer_mid_run_leaves_the_store_cancelled(
    make_napari_viewer, qtbot, tmp_path, volume, hold
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    target = tmp_path / "out.zarr"
    stream = _start(widget, qtbot, output=target)
    viewer.close()
    # Read at once: the close waited for the run to write how it ended.
    assert chunkwise.output_status(target) is Status.CANCELLED
    assert not stream.running or stream._run_over.is_set()
    assert stream._layer_gone


@pytest.mark.parametrize("answer", ["Delete", "Keep"])
def test_closing_the_dock_mid_run_cancels_and_asks_about_the_scratch(
    make_napari_viewer, qtbot, volume, hold, answer
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    dock, widget = _dock(viewer)
    stream = _start(widget, qtbot)  # no output: a scratch store
    scratch = widget._scratch
    questions = []
    widget.ask = lambda title, text, buttons: (
        questions.append((text, buttons, chunkwise.output_status(scratch))) or answer
    )
    output = widget.output_layer
    viewer.window.remove_dock_widget(dock)
    assert stream._layer_gone
    # Asked once the run had written that it was cancelled.
    ((text, buttons, status),) = questions
    assert status is Status.CANCELLED
    assert str(scratch) in text and "B)" in text  # the path and its size
    assert buttons == ("Delete", "Keep")
    if answer == "Delete":
        assert not scratch.parent.exists()
        assert output not in viewer.layers
    else:
        assert chunkwise.output_status(scratch) is Status.CANCELLED
        # No black layer over the input without a word: it says what it is.
        assert output in viewer.layers
        assert "(cancelled" in output.name and "% computed)" in output.name
        assert str(scratch) in [run.path for run in _recent.load()]


def _cancelled_run(make_napari_viewer, qtbot, volume):
    """A viewer with the widget whose first scratch run was started, then cancelled."""
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    stream = _start(widget, qtbot)
    widget.cancel_button.clicked.emit()
    _wait_end(qtbot, stream)
    return widget, stream, widget._scratch


def test_cancel_then_run_offers_to_resume_the_scratch_run(
    make_napari_viewer, qtbot, volume, hold
):
    widget, stream, scratch = _cancelled_run(make_napari_viewer, qtbot, volume)
    assert chunkwise.output_status(scratch) is Status.CANCELLED
    hold.set()

    offered = []
    widget.ask = lambda title, text, buttons: offered.append(buttons) or "Cancel"
    widget.run_button.clicked.emit()
    assert offered == [("Resume", "Start over", "Cancel")]
    assert widget.stream is stream  # nothing started
    widget.ask = lambda title, text, buttons: offered.append(buttons) or "Resume"
    widget.run_button.clicked.emit()  # again: still offered, not a new scratch
    assert len(offered) == 2
    assert widget._last_target == scratch
    assert widget.stream.run.done_at_start >= 1
    _wait_end(qtbot, widget.stream)
    assert chunkwise.output_status(scratch) is Status.COMPLETE
    np.testing.assert_array_equal(
        zarr.open_array(scratch, mode="r")[:], ndimage.gaussian_filter(volume, 1.0)
    )
    assert sorted(scratch.parent.parent.glob(f"{scratch.parent.name}*")) == [
        scratch.parent
    ]


def test_start_over_replaces_the_unfinished_scratch(
    make_napari_viewer, qtbot, volume, hold
):
    widget, _, first = _cancelled_run(make_napari_viewer, qtbot, volume)
    hold.set()
    widget.ask = lambda title, text, buttons: "Start over"
    widget.run_button.clicked.emit()
    second = widget._scratch
    assert second != first
    _wait_end(qtbot, widget.stream)
    assert chunkwise.output_status(second) is Status.COMPLETE
    # Its layer shows the new run now; deleted in a thread as the run starts.
    qtbot.waitUntil(lambda: not first.parent.exists(), timeout=10_000)


def test_an_unfinished_run_is_found_and_resumed_after_a_restart(
    make_napari_viewer, qtbot, tmp_path, volume, hold
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    target = tmp_path / "out.zarr"
    stream = _start(widget, qtbot, output=target)
    widget.cancel_button.clicked.emit()
    _wait_end(qtbot, stream)
    hold.set()
    viewer.close()

    # "Restart": a new viewer and dock, the same data opened again.
    again = make_napari_viewer()
    again.add_image(volume, name="ct")
    _, fresh = _dock(again)
    choices = fresh.recent.runs.choices
    assert len(choices) == 1
    (label,) = [fresh.recent.runs.native.itemText(0)]
    assert "cancelled" in label and str(target) in label
    assert fresh.recent.resume.enabled
    fresh.recent.resume.clicked.emit()
    assert fresh.stream is not None and fresh.stream.run.done_at_start >= 1
    _wait_end(qtbot, fresh.stream)
    assert chunkwise.output_status(target) is Status.COMPLETE
    np.testing.assert_array_equal(
        zarr.open_array(target, mode="r")[:], ndimage.gaussian_filter(volume, 1.0)
    )
    fresh.recent.refresh()
    assert not fresh.recent.resume.enabled  # complete: nothing to resume
    # Open it: the plugin's reader shows the result as a layer.
    fresh.recent.open.clicked.emit()
    assert any(Path(str(layer.source.path or "")) == target for layer in again.layers)
