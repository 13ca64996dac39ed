"""The preview follows the view: what the canvas shows, capped, abandoned when stale.

A real napari viewer on Xvfb with a 16 x 1024 x 1024 Zarr input; every value the
preview shows is compared with scipy.ndimage on the whole volume.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import zarr
from gui import drawn
from scipy import ndimage

import chunkwise._region
from chunkwise import ops
from chunkwise._napari import _preview
from chunkwise._napari._layers import camera_of

SHAPE = (16, 1024, 1024)
SIGMA = 2.0


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, SHAPE, dtype=np.uint8)


@pytest.fixture(scope="module")
def smoothed(volume) -> np.ndarray:
    return ndimage.gaussian_filter(volume, SIGMA)


@pytest.fixture
def array(tmp_path, volume) -> zarr.Array:
    array = zarr.create_array(
        tmp_path / "in.zarr", shape=SHAPE, chunks=(16, 64, 64), dtype="uint8"
    )
    array[:] = volume
    return array


def _dock(viewer, sigma: float = SIGMA):
    _, widget = viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")
    widget.steps.steps[0].op_name.value = "gaussian"
    widget.steps.steps[0].fields["sigma"].value = sigma
    return widget


def _finished(widget, before=None) -> bool:
    """A preview newer than ``before`` is on screen and nothing is computing."""
    preview = widget._preview
    return (
        preview.layer is not None
        and not preview.busy
        and preview._done is not None
        and preview._done is not before
    )


def _wait(qtbot, widget, before=None, timeout=20_000) -> None:
    qtbot.waitUntil(lambda: _finished(widget, before), timeout=timeout)
    preview = widget._preview.layer
    viewer = getattr(
        widget._viewer, "__wrapped__", widget._viewer
    )  # not napari's proxy
    qtbot.waitUntil(lambda: drawn(viewer, preview), timeout=timeout)


def _shown(widget) -> tuple[int, slice, slice]:
    """Plane and output slices the preview layer covers (scale 1, as the input)."""
    layer = widget._preview.layer
    z, y, x = (round(float(t)) for t in layer.translate)
    _, height, width = layer.data.shape
    return z, slice(y, y + height), slice(x, x + width)


def _fits_the_view(viewer, rows: slice, cols: slice) -> bool:
    """The pixels cover the view, reaching at most one pixel beyond each side."""
    low, high = _visible(viewer)
    first = np.array([rows.start, cols.start])
    last = np.array([rows.stop, cols.stop]) - 1
    return bool((np.abs(first - low) <= 1).all() and (np.abs(last - high) <= 1).all())


def _visible(viewer) -> tuple[np.ndarray, np.ndarray]:
    """World corners (top-left, bottom-right) of the canvas, from the camera."""
    camera = camera_of(viewer)
    half = np.asarray(viewer.canvas.size, float) / camera.zoom / 2
    centre = np.asarray(camera.center, float)[-2:]
    return centre - half, centre + half


def test_preview_covers_only_the_visible_field_and_equals_scipy(
    make_napari_viewer, qtbot, array, smoothed
):
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    camera = camera_of(viewer)
    camera.center = (0, 380, 610)
    camera.zoom = 3.0
    viewer.dims.set_current_step(0, 9)
    widget.preview.value = True
    _wait(qtbot, widget)
    z, rows, cols = _shown(widget)
    assert z == 9
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )
    # The view, in pixels: the preview covers it, and no more than a voxel beyond.
    assert _fits_the_view(viewer, rows, cols)
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < 0.3 * SHAPE[1] ** 2
    # napari's own idea of the visible part agrees, once the canvas has drawn.
    qtbot.waitUntil(lambda: layer.corner_pixels[1, 1] > 0)
    (top, left), (bottom, right) = layer.corner_pixels[:, 1:]
    assert abs(rows.start - top) <= 1 and abs(rows.stop - 1 - bottom) <= 1
    assert abs(cols.start - left) <= 1 and abs(cols.stop - 1 - right) <= 1
    # On screen, the preview alone fills the canvas: no background shows.
    layer.visible = False
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert (shot.max(axis=-1) > 0).mean() > 0.99
    assert widget.status.value == ""


def test_a_view_larger_than_the_budget_gets_its_centre_and_a_note(
    make_napari_viewer, qtbot, array, smoothed
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    widget.preview_size.value = 256
    viewer.reset_view()  # the whole plane in view
    widget.preview.value = True
    _wait(qtbot, widget)
    z, rows, cols = _shown(widget)
    height, width = rows.stop - rows.start, cols.stop - cols.start
    assert 0.9 * 256**2 <= height * width <= 256**2
    centre = np.asarray(camera_of(viewer).center)[-2:]
    middle = ((rows.start + rows.stop - 1) / 2, (cols.start + cols.stop - 1) / 2)
    np.testing.assert_allclose(middle, centre, atol=1)
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )
    assert "only" in widget.status.value and "zoom in" in widget.status.value

    # Zoomed in to less than the budget: the view, and the note goes. The view
    # lies inside the last preview, so that is cut to it rather than computed.
    camera_of(viewer).zoom *= 8
    qtbot.waitUntil(lambda: _fits_the_view(viewer, *_shown(widget)[1:]))
    assert widget.status.value == ""
    z, rows, cols = _shown(widget)
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )


def test_pan_zoom_and_slider_restart_the_preview_where_the_view_is(
    make_napari_viewer, qtbot, array, smoothed
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    camera = camera_of(viewer)
    camera.zoom = 4.0
    camera.center = (0, 200, 200)
    widget.preview.value = True
    _wait(qtbot, widget)
    first = _shown(widget)
    for change in (
        lambda: setattr(camera, "center", (0, 700, 500)),  # pan
        lambda: setattr(camera, "zoom", 2.5),  # zoom out: more to compute
        lambda: viewer.dims.set_current_step(0, 3),  # slider
    ):
        before = widget._preview._done
        change()
        _wait(qtbot, widget, before)
        z, rows, cols = _shown(widget)
        assert z == viewer.dims.current_step[0]
        assert _fits_the_view(viewer, rows, cols)
        np.testing.assert_array_equal(
            widget._preview.layer.data[0], smoothed[z, rows, cols]
        )
    assert _shown(widget) != first


class _SlowTiles:
    """Wraps the engine's evaluator: sleeps in each tile, records plane and times."""

    def __init__(self, monkeypatch, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[tuple[int, float]] = []
        self.calls: list[tuple[int, float, float]] = []
        self._lock = threading.Lock()
        real = chunkwise._region.evaluate

        def slow(op, shape, dtype, read, box):
            began = time.perf_counter()
            with self._lock:
                self.started.append((box.start[0], began))
            time.sleep(self.seconds)
            data = real(op, shape, dtype, read, box)
            with self._lock:
                self.calls.append((box.start[0], began, time.perf_counter()))
            return data

        monkeypatch.setattr(chunkwise._region, "evaluate", slow)

    def on(self, plane: int) -> list[tuple[float, float]]:
        with self._lock:
            return [(a, b) for z, a, b in self.calls if z == plane]


def _cancel_time(job) -> list[float]:
    """Records when ``job``'s token is cancelled."""
    token, when = job.cancel, []
    cancel = token.cancel

    def recorded():
        when.append(time.perf_counter())
        cancel()

    token.cancel = recorded
    return when


def test_a_stale_preview_stops_within_a_tile_and_the_new_one_does_not_wait(
    make_napari_viewer, qtbot, array, smoothed, monkeypatch
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    viewer.reset_view()
    viewer.dims.set_current_step(0, 4)
    qtbot.wait(300)  # the canvas has its size: nothing restarts the first preview
    slow = _SlowTiles(monkeypatch, 0.4)
    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.busy)
    old_job = widget._preview._job
    cancelled = _cancel_time(old_job)
    shape = old_job.box.shape
    tile = chunkwise._region._tile_shape(shape, chunkwise._region.TILE_VOXELS)
    tiles = math.prod(-(-n // t) for n, t in zip(shape, tile, strict=True))
    assert tiles >= 3  # more than the 2 cores start at once
    qtbot.waitUntil(lambda: len(slow.started) >= 1)  # the first tiles are under way
    assert widget._preview._job is old_job
    viewer.dims.set_current_step(0, 11)
    _wait(qtbot, widget, timeout=30_000)
    qtbot.wait(500)  # anything of the old preview still running has ended
    old = slow.on(4)
    # Only the tiles under way when the view changed ran: one per core at most.
    assert len(cancelled) == 1
    assert all(began < cancelled[0] for began, _ in old)
    assert 1 <= len(old) < tiles
    # The new preview started before the old one's last tile ended.
    new = slow.on(11)
    assert min(began for began, _ in new) < max(end for _, end in old)
    z, rows, cols = _shown(widget)
    assert z == 11
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )


def test_deleting_the_input_or_unticking_mid_preview_is_quiet(
    make_napari_viewer, qtbot, array, monkeypatch
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    slow = _SlowTiles(monkeypatch, 0.3)
    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.busy)
    widget.preview.value = False
    qtbot.wait(1000)
    assert not any("preview" in layer.name for layer in viewer.layers)
    assert not widget._preview.busy

    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.busy)
    calls = len(slow.calls)
    viewer.layers.remove("ct")
    qtbot.waitUntil(lambda: not widget._preview.busy, timeout=5_000)
    qtbot.wait(1000)
    assert not any("preview" in layer.name for layer in viewer.layers)
    assert len(slow.calls) <= calls + 2 * 2  # no more than the tiles under way
    assert widget.input.value is None


def test_downsample_preview_lies_on_the_input_where_it_was_computed(
    make_napari_viewer, qtbot, array, volume
):
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(
        array, name="ct", scale=(2.0, 1.0, 1.0), translate=(0.0, 30.0, -12.0)
    )
    widget = _dock(viewer)
    widget.steps.steps[0].op_name.value = "downsample"
    widget.steps.steps[0].fields["factor"].value = 2
    camera = camera_of(viewer)
    camera.zoom = 2.0
    camera.center = (0, 500, 300)
    viewer.dims.set_current_step(0, 13)  # input plane 13 of 16: output plane 6
    widget.preview.value = True
    _wait(qtbot, widget)
    preview = widget._preview.layer
    np.testing.assert_allclose(preview.scale, (4.0, 2.0, 2.0))
    # The first preview voxel's world position, in input voxels: the centre of
    # the 2 x 2 x 2 input voxels it averages.
    first = np.asarray(layer.world_to_data(preview.data_to_world((0, 0, 0))))
    start = (first - 0.5) / 2
    np.testing.assert_allclose(start, np.round(start), atol=1e-9)
    plane, row, col = (int(v) for v in np.round(start))
    assert plane == 13 // 2
    _, height, width = preview.data.shape
    expected = ops.downsample(2)(volume)[plane, row : row + height, col : col + width]
    np.testing.assert_array_equal(preview.data[0], expected)
    # It covers the view, in output voxels of 2 world units.
    low, high = _visible(viewer)
    top, left = preview.data_to_world((0, 0, 0))[1:]
    bottom, right = preview.data_to_world((0, height - 1, width - 1))[1:]
    assert top <= low[0] + 2 and bottom >= high[0] - 2
    assert left <= low[1] + 2 and right >= high[1] - 2
    assert top >= low[0] - 2 and right <= high[1] + 2


def test_a_slow_preview_shows_its_finished_rows_exactly(
    make_napari_viewer, qtbot, array, smoothed, monkeypatch
):
    monkeypatch.setattr(_preview, "PROGRESSIVE_SECONDS", 0.0)
    monkeypatch.setattr(_preview, "PROGRESSIVE_INTERVAL", 0.0)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(array, name="ct", contrast_limits=(0, 255))
    widget = _dock(viewer)
    viewer.reset_view()
    qtbot.wait(300)
    _SlowTiles(monkeypatch, 0.3)
    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.layer is not None, timeout=10_000)
    # The first finished tile is shown at once, so that napari builds the layer
    # while the other tiles compute.
    assert widget._preview.busy
    job = widget._preview._job
    z, rows, cols = _shown(widget)
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < math.prod(
        job.box.shape
    )
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )
    # Then the finished rows, before the whole region.
    full = (job.box.start[2], job.box.stop[2])
    qtbot.waitUntil(lambda: _shown(widget)[2] == slice(*full), timeout=10_000)
    assert widget._preview.busy
    z, rows, cols = _shown(widget)
    # Finished rows, the full width, around the middle of the view.
    assert rows.stop - rows.start < job.box.shape[1]
    assert (cols.start, cols.stop) == (job.box.start[2], job.box.stop[2])
    middle = (job.box.start[1] + job.box.stop[1] - 1) // 2
    assert rows.start <= middle < rows.stop
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )
    _wait(qtbot, widget)
    z, rows, cols = _shown(widget)
    assert (rows.stop, cols.stop) == job.box.stop[1:]
    np.testing.assert_array_equal(
        widget._preview.layer.data[0], smoothed[z, rows, cols]
    )
