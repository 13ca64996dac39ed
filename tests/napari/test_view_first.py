"""View first in a real viewer: the plane in view is computed first, follows the
slider, and what is not computed yet lets the input show through."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import zarr
from gui import dock, wait_for_run

import chunkwise
from chunkwise._napari import _worker
from chunkwise._napari._layers import camera_of


class _Gate:
    """Lets a one-job run compute blocks only as the test releases them."""

    def __init__(self) -> None:
        self.steps = threading.Semaphore(0)
        self.open = False

    def release(self, n: int = 1) -> None:
        self.steps.release(n)

    def wide_open(self) -> None:
        self.open = True
        self.steps.release(1000)


@pytest.fixture
def gate(monkeypatch) -> _Gate:
    gate = _Gate()
    records = _worker._records

    class Stepped:
        def __init__(self, run):
            self.run = run

        def __iter__(self):
            return self

        def __next__(self):
            if not gate.open:
                gate.steps.acquire(timeout=60)
            return next(self.run)

    def stepped(run):
        return (yield from records(Stepped(run)))

    monkeypatch.setattr(_worker, "_records", stepped)
    yield gate
    gate.wide_open()


def _plane_blocks(run, z: int) -> set[int]:
    return {
        i
        for i in range(len(run.plan))
        if run.plan.block(i).box.start[0] <= z < run.plan.block(i).box.stop[0]
    }


def _start(viewer, widget, tmp_path, op: str, chunks: str) -> list[int]:
    widget.steps.steps[0].op_name.value = op
    widget.chunks.value = chunks
    widget.n_jobs.value = 1
    widget.output.value = tmp_path / "out.zarr"
    widget.run_button.clicked.emit()
    order: list[int] = []
    widget.stream.worker.yielded.connect(lambda record: order.append(record.index))
    return order


def test_blocks_crossing_the_plane_in_view_finish_first(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer()
    data = np.random.default_rng(1).integers(0, 255, (64, 64, 64), dtype=np.uint8)
    viewer.add_image(data, name="ct")
    viewer.dims.set_current_step(0, 40)
    widget = dock(viewer)
    order = _start(viewer, widget, tmp_path, "invert", "16,16,16")
    wait_for_run(qtbot, widget)
    run = widget.stream.run
    plane = _plane_blocks(run, 40)
    assert len(plane) == 16 and len(run.plan) == 64
    assert set(order[:16]) == plane
    assert sorted(order) == list(range(64))
    written = zarr.open_array(tmp_path / "out.zarr", mode="r")[:]
    np.testing.assert_array_equal(written, 255 - data)


def test_moving_the_slider_mid_run_reprioritises(
    make_napari_viewer, qtbot, tmp_path, gate
):
    viewer = make_napari_viewer()
    data = np.random.default_rng(2).integers(0, 255, (64, 64, 64), dtype=np.uint8)
    viewer.add_image(data, name="ct")
    viewer.dims.set_current_step(0, 40)
    widget = dock(viewer)
    order = _start(viewer, widget, tmp_path, "invert", "16,16,16")
    run = widget.stream.run
    calls: list[int] = []
    prioritise = run.prioritise

    def recorded(*regions):
        calls.append(len(order))
        prioritise(*regions)

    run.prioritise = recorded
    gate.release(3)
    qtbot.waitUntil(lambda: len(order) >= 3, timeout=60_000)
    assert set(order) <= _plane_blocks(run, 40)
    viewer.dims.set_current_step(0, 5)
    qtbot.waitUntil(lambda: bool(calls), timeout=10_000)
    gate.wide_open()
    wait_for_run(qtbot, widget)
    moved, done_before = calls[0], set(order[: calls[0]])
    assert moved < 16
    wanted = _plane_blocks(run, 5) - done_before
    # A block or two were handed out before the slider moved.
    assert set(order[moved : moved + len(wanted) + 2]) >= wanted
    assert sorted(order) == list(range(64))
    written = zarr.open_array(tmp_path / "out.zarr", mode="r")[:]
    np.testing.assert_array_equal(written, 255 - data)


def test_slider_steps_mid_run_read_the_new_plane_off_the_main_thread(
    make_napari_viewer, qtbot, tmp_path, gate, monkeypatch
):
    viewer = make_napari_viewer()
    data = np.random.default_rng(3).integers(0, 255, (64, 64, 64), dtype=np.uint8)
    viewer.add_image(data, name="ct")
    viewer.dims.set_current_step(0, 40)
    widget = dock(viewer)
    order = _start(viewer, widget, tmp_path, "invert", "16,16,16")
    gate.release(16)  # the blocks of the planes 32-47, view first
    qtbot.waitUntil(lambda: len(order) >= 16, timeout=60_000)
    stream = widget.stream
    live = stream.live
    qtbot.waitUntil(lambda: stream.refreshes >= 1, timeout=60_000)
    main = threading.get_ident()
    on_main: list = []
    read = zarr.Array.__getitem__

    def recorded(array, key):
        if threading.get_ident() == main and array is live.array:
            on_main.append(key)
        return read(array, key)

    monkeypatch.setattr(zarr.Array, "__getitem__", recorded)

    def shown_plane(z: int):
        """The plane napari shows of the output, once it is plane ``z``."""
        view, kept = live.view, live._kept
        if view is None:
            return None
        plane = range(64)[view[0]]  # napari slices a plane by index or 1-long slice
        if plane not in (z, range(z, z + 1)):
            return None
        return None if kept is None or kept[0] != view else np.squeeze(live[view])

    for z, expected in ((44, (255 - data[44]).astype(np.float32)), (5, None)):
        viewer.dims.set_current_step(0, z)
        assert not on_main  # napari got a stand-in at once
        qtbot.waitUntil(lambda z=z: shown_plane(z) is not None, timeout=10_000)
        if expected is None:  # no block of plane 5 is done: all see-through
            assert np.isnan(shown_plane(z)).all()
        else:
            np.testing.assert_array_equal(shown_plane(z), expected)
    assert not on_main
    gate.wide_open()
    wait_for_run(qtbot, widget)
    np.testing.assert_array_equal(np.asarray(widget.output_layer.data), 255 - data)
    np.testing.assert_array_equal(widget.output_layer.data[5, :, :], 255 - data[5])


def _pixel(shot: np.ndarray, viewer, world_yx: tuple[float, float]) -> np.ndarray:
    """The screenshot's pixel at world position (y, x) of the 2D view."""
    camera = camera_of(viewer)
    centre = np.asarray(camera.center, dtype=float)[-2:]
    row, col = (np.asarray(world_yx) - centre) * camera.zoom + np.asarray(
        shot.shape[:2]
    ) / 2
    return shot[int(row), int(col), :3].astype(int)


def test_what_is_not_computed_yet_shows_the_input_through(
    make_napari_viewer, qtbot, tmp_path, gate
):
    viewer = make_napari_viewer(show=True)
    data = np.full((16, 64, 64), 200, dtype=np.uint8)
    viewer.add_image(data, name="ct", contrast_limits=(0, 255))
    viewer.dims.set_current_step(0, 8)
    widget = dock(viewer)
    # Four blocks over the plane, a quadrant each; one job hands them out row by row.
    order = _start(viewer, widget, tmp_path, "invert", "16,32,32")
    layer = widget.output_layer
    gate.release(1)
    qtbot.waitUntil(lambda: len(order) >= 1, timeout=60_000)
    qtbot.waitUntil(lambda: widget.stream.refreshes >= 1, timeout=60_000)
    qtbot.wait(200)
    viewer.reset_view()
    qtbot.wait(100)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    box = widget.stream.run.plan.block(order[0]).box
    done = ((box.start[1] + box.stop[1]) / 2, (box.start[2] + box.stop[2]) / 2)
    computed = _pixel(shot, viewer, done)
    hidden = [
        _pixel(shot, viewer, (y, x))
        for y in (16, 48)
        for x in (16, 48)
        if not (box.start[1] <= y < box.stop[1] and box.start[2] <= x < box.stop[2])
    ]
    # The finished block shows its values at the layer's contrast: 255 - 200.
    np.testing.assert_allclose(computed, 55, atol=3)
    # The rest shows the input (200) through the output, not black.
    assert len(hidden) == 3
    for pixel in hidden:
        np.testing.assert_allclose(pixel, 200, atol=3)
    # What the user reads from the layer keeps the output's dtype and values.
    assert layer.data.dtype == np.uint8
    assert layer.data[8, 0, 0] in (0, 55)
    gate.wide_open()
    wait_for_run(qtbot, widget)
    # After the run the layer shows the output array through the same view (napari
    # keeps its float texture); read as data, it is the output itself.
    assert isinstance(layer.data.chunkwise_input, zarr.Array)
    assert layer.data.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(layer.data), 255 - data)
    # Everything is computed: no see-through left.
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    for y in (16, 48):
        for x in (16, 48):
            np.testing.assert_allclose(_pixel(shot, viewer, (y, x)), 55, atol=3)


def _run(tmp_path, data, out, **kwargs):
    import chunkwise
    from chunkwise import ops

    return chunkwise.iter_process(
        data, ops.invert(), tmp_path / out, chunks=(8, 16, 16), n_jobs=1, **kwargs
    )


def test_live_pyramid_shows_each_level_where_it_is_done(tmp_path):
    from chunkwise._napari._live import LivePyramid

    data = np.random.default_rng(3).integers(0, 255, (16, 64, 64), dtype=np.uint8)
    run = _run(tmp_path, data, "o.ome.zarr", format="ome-zarr", levels=3)
    live = LivePyramid.of_run(run, transparent=True)
    views = [
        (level, (slice(0, 1), slice(None), slice(None)))
        for level in range(len(live.levels))
    ]
    for view in views:
        _, shown = live.read(view)
        assert shown.dtype == np.float32 and np.isnan(shown).all()
    first = next(run)
    live.landed(first)
    _, shown = live.read(views[0])
    box = first.box
    inside = shown[0, box.start[1] : box.stop[1], box.start[2] : box.stop[2]]
    if box.start[0] == 0:
        np.testing.assert_array_equal(
            inside, 255 - data[0, box.slices[1], box.slices[2]]
        )
    assert np.isnan(shown).sum() == shown.size - (
        inside.size if box.start[0] == 0 else 0
    )
    for record in run:
        live.landed(record)
    for record_level, box in run.levels_built:
        live.levels[record_level].landed(box)
    for level, key in views:
        _, shown = live.read((level, key))
        expected = np.asarray(run.target.levels[level][key])
        np.testing.assert_array_equal(shown, expected.astype(np.float32))
    # What a user reads keeps the output's dtype; the final layer is the output.
    assert live.levels[0].dtype == np.uint8
    assert np.asarray(live.levels[0]).dtype == np.uint8
    assert live.final[0].dtype == np.uint8


def test_resumed_live_output_shows_what_the_earlier_run_finished(tmp_path):
    import chunkwise
    from chunkwise._napari._live import LiveOutput

    data = np.random.default_rng(4).integers(0, 255, (16, 64, 64), dtype=np.uint8)
    run = _run(tmp_path, data, "o.zarr")
    done = []
    with pytest.raises(chunkwise.Cancelled):
        for record in run:
            done.append(record.box)
            if len(done) == 3:
                run.cancel()
    again = _run(tmp_path, data, "o.zarr", resume=True)
    live = LiveOutput.of_run(again, transparent=True)
    key = (slice(0, 1), slice(None), slice(None))
    shown = live[key]
    finished = np.zeros((64, 64), dtype=bool)
    for box in done:
        if box.start[0] == 0:
            finished[box.slices[1:]] = True
    assert finished.any()
    np.testing.assert_array_equal(np.isnan(shown[0]), ~finished)
    np.testing.assert_array_equal(shown[0][finished], (255 - data[0])[finished])
    again.close()


def test_a_cancelled_run_leaves_what_it_did_not_compute_see_through(
    make_napari_viewer, qtbot, tmp_path, gate
):
    viewer = make_napari_viewer(show=True)
    data = np.full((16, 64, 64), 200, dtype=np.uint8)
    viewer.add_image(data, name="ct", contrast_limits=(0, 255))
    viewer.dims.set_current_step(0, 8)
    widget = dock(viewer)
    order = _start(viewer, widget, tmp_path, "invert", "16,32,32")
    layer = widget.output_layer
    gate.release(1)
    qtbot.waitUntil(lambda: len(order) >= 1, timeout=60_000)
    widget.cancel_button.clicked.emit()
    gate.wide_open()
    wait_for_run(qtbot, widget)
    assert chunkwise.output_status(tmp_path / "out.zarr") is chunkwise.Status.CANCELLED
    done = len(order)  # blocks finished, those in flight at the cancel included
    assert 1 <= done < 4
    viewer.reset_view()
    qtbot.wait(300)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    pixels = [_pixel(shot, viewer, (y, x)) for y in (16, 48) for x in (16, 48)]
    # Each quadrant is one block: computed ones show 255 - 200, the rest the input.
    computed = sum(bool(np.allclose(p, 55, atol=3)) for p in pixels)
    through = sum(bool(np.allclose(p, 200, atol=3)) for p in pixels)
    assert (computed, through) == (done, 4 - done)
    assert layer in viewer.layers and layer.data.dtype == np.uint8
