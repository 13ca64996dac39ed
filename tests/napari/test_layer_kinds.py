"""Every layer kind is processed right: RGB per colour, labels kept or warned about.

In a real napari viewer on Xvfb; references are scipy on each colour apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from gui import dock, wait_for_run
from napari.layers import Image, Labels
from scipy import ndimage

from chunkwise._napari._reader import read_zarr
from conftest import reference_downsample


def _choose(widget, name, **values):
    step = widget.steps.steps[0]
    step.op_name.value = name
    for field, value in values.items():
        step.fields[field].value = value


def _per_colour(function, rgb: np.ndarray) -> np.ndarray:
    return np.stack([function(rgb[..., c]) for c in range(rgb.shape[-1])], axis=-1)


@pytest.fixture
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()[::2, ::2].copy()  # napari's sample, 256 x 256 x 3


@pytest.fixture
def cells() -> np.ndarray:
    """Labels with far-apart IDs in the middle, background in the first blocks."""
    labels = np.zeros((32, 96, 96), np.int32)
    labels[10:22, 40:60, 40:60] = 40
    labels[12:20, 62:80, 45:70] = 17
    labels[8:24, 30:38, 60:90] = 3
    return labels


def test_rgb_is_filtered_colour_by_colour(
    make_napari_viewer, qtbot, tmp_path, astronaut
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(astronaut, name="astronaut", rgb=True)
    assert layer.rgb
    widget = dock(viewer)
    _choose(widget, "gaussian", sigma=3.0)
    widget.output.value = tmp_path / "out.zarr"
    widget.n_jobs.value = 2
    widget.chunks.value = "64,64,2"  # chunks that cut across the colours
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)

    expected = _per_colour(lambda c: ndimage.gaussian_filter(c, 3.0), astronaut)
    written = zarr.open_array(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(written[:], expected)
    # A grey pixel stays grey and a pure colour stays pure: nothing bled.
    assert not np.array_equal(written[:], ndimage.gaussian_filter(astronaut, 3.0))
    shown = widget.output_layer
    assert isinstance(shown, Image) and shown.rgb
    np.testing.assert_allclose(shown.scale, layer.scale)
    assert "done" in str(widget.status.value)

    # The plugin's reader opens it as the RGB image it is, on the same place.
    [(_data, meta, kind)] = read_zarr(str(tmp_path / "out.zarr"))
    assert kind == "image" and meta.get("rgb") is True
    assert len(meta["scale"]) == 2


def test_rgb_downsample_lies_on_its_input(make_napari_viewer, qtbot, astronaut):
    viewer = make_napari_viewer()
    viewer.add_image(astronaut, name="astronaut", rgb=True, scale=(0.5, 0.5))
    widget = dock(viewer)
    _choose(widget, "downsample", factor=2)
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    shown = widget.output_layer
    assert shown.rgb
    assert shown.data.shape == (128, 128, 3)
    np.testing.assert_allclose(shown.scale, (1.0, 1.0))
    np.testing.assert_allclose(shown.translate, (0.25, 0.25))


def test_rgb_preview_is_per_colour(make_napari_viewer, qtbot, astronaut):
    viewer = make_napari_viewer()
    viewer.add_image(astronaut, name="astronaut", rgb=True)
    widget = dock(viewer)
    _choose(widget, "median", size=5)
    widget.preview.value = True
    expected = _per_colour(lambda c: ndimage.median_filter(c, 5), astronaut)

    def shows_expected() -> bool:
        preview = widget._preview.layer
        if preview is None or preview.data.shape[-1] != 3:
            return False
        translate = np.round(preview.translate).astype(int)
        height, width = preview.data.shape[:2]
        crop = expected[
            translate[0] : translate[0] + height, translate[1] : translate[1] + width
        ]
        return np.array_equal(preview.data, crop)

    qtbot.waitUntil(shows_expected, timeout=20_000)
    assert widget._preview.layer.rgb


def test_labels_median_stays_labels_without_asking(
    make_napari_viewer, qtbot, tmp_path, cells
):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    widget = dock(viewer)
    asked = []
    widget.ask = lambda title, text, buttons: asked.append(text) or "Cancel"
    _choose(widget, "median", size=3)
    widget.output.value = tmp_path / "median.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert asked == []
    assert isinstance(widget.output_layer, Labels)
    np.testing.assert_array_equal(
        widget.output_layer.data[:], ndimage.median_filter(cells, 3)
    )
    # Opened again, it is labels too.
    assert read_zarr(str(tmp_path / "median.zarr"))[0][2] == "labels"


def test_labels_maximum_stays_labels(make_napari_viewer, qtbot, cells):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    widget = dock(viewer)
    _choose(widget, "maximum", size=3)
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert isinstance(widget.output_layer, Labels)


def test_gaussian_on_labels_asks_first_and_cancel_runs_nothing(
    make_napari_viewer, cells
):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    widget = dock(viewer)
    asked = []
    widget.ask = lambda title, text, buttons: asked.append((text, buttons)) or "Cancel"
    _choose(widget, "gaussian", sigma=2.0)
    widget.run_button.clicked.emit()
    [(text, buttons)] = asked
    assert "labels" in text and "gaussian" in text
    assert buttons == ("Run anyway", "Cancel")
    assert widget.stream is None
    assert [layer.name for layer in viewer.layers] == ["cells"]


def test_gaussian_of_labels_shows_with_the_ids_range(make_napari_viewer, qtbot, cells):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    viewer.dims.set_current_step(0, 16)
    widget = dock(viewer)
    widget.ask = lambda title, text, buttons: "Run anyway"
    _choose(widget, "gaussian", sigma=2.0)
    widget.chunks.value = "16,32,32"  # the first block is background only
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    shown = widget.output_layer
    assert isinstance(shown, Image)
    np.testing.assert_array_equal(shown.data[:], ndimage.gaussian_filter(cells, 2.0))
    qtbot.wait(200)  # any contrast guessed off the main thread would land by now
    low, high = shown.contrast_limits
    assert (low, high) != (0.0, 1.0)
    assert low == 0 and high == 40  # the IDs on the plane in view: 0 to 40


def test_preview_of_a_gaussian_on_labels_says_it_blends(
    make_napari_viewer, qtbot, cells
):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    widget = dock(viewer)
    _choose(widget, "gaussian", sigma=2.0)
    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.layer is not None, timeout=10_000)
    assert "blends label IDs" in str(widget.status.value)
    _choose(widget, "median", size=3)
    qtbot.waitUntil(lambda: "blends" not in str(widget.status.value), timeout=10_000)


def test_rgb_into_an_ome_zarr_pyramid(make_napari_viewer, qtbot, tmp_path):
    from skimage import data

    astronaut = data.astronaut()  # 512 x 512: a pyramid of 2 levels
    viewer = make_napari_viewer()
    viewer.add_image(astronaut, name="astronaut", rgb=True)
    widget = dock(viewer)
    _choose(widget, "median", size=3)
    widget.format.value = "ome-zarr"
    widget.output.value = tmp_path / "out.ome.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    shown = widget.output_layer
    assert shown.rgb and shown.multiscale
    group = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    expected = _per_colour(lambda c: ndimage.median_filter(c, 3), astronaut)
    np.testing.assert_array_equal(group["0"][:], expected)
    assert group["1"].shape == (256, 256, 3)
    np.testing.assert_array_equal(
        group["1"][:],
        _per_colour(lambda c: reference_downsample(c, 2, "mean"), expected),
    )
    axes = group.attrs["ome"]["multiscales"][0]["axes"]
    assert [a["type"] for a in axes] == ["space", "space", "channel"]


def _chain(widget, *steps):
    """Fill the widget's chain: (operation, {parameter: value}) per step."""
    for index, (name, values) in enumerate(steps):
        step = widget.steps.steps[0] if index == 0 else widget.steps.append_step(name)
        step.op_name.value = name
        for field, value in values.items():
            step.fields[field].value = value


def test_a_chain_ending_in_a_mask_makes_labels_from_an_image(
    make_napari_viewer, qtbot, tmp_path, cells
):
    # gaussian drops labels, threshold makes a mask, median keeps it: labels.
    image = (cells * 5).astype(np.float32)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="image")
    widget = dock(viewer)
    _chain(
        widget,
        ("gaussian", {"sigma": 1.0}),
        ("threshold", {"value": 50.0}),
        ("median", {"size": 3}),
    )
    widget.output.value = tmp_path / "mask.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert isinstance(widget.output_layer, Labels)
    expected = ndimage.median_filter(
        (ndimage.gaussian_filter(image, 1.0) > 50).astype(np.uint8), 3
    )
    np.testing.assert_array_equal(widget.output_layer.data[:], expected)
    assert read_zarr(str(tmp_path / "mask.zarr"))[0][2] == "labels"


def test_a_chain_on_labels_names_only_the_steps_that_blend(
    make_napari_viewer, qtbot, cells
):
    viewer = make_napari_viewer()
    viewer.add_labels(cells, name="cells")
    widget = dock(viewer)
    asked = []
    widget.ask = lambda title, text, buttons: asked.append(text) or "Cancel"
    _chain(
        widget,
        ("median", {"size": 3}),
        ("uniform", {"size": 3}),
        ("maximum", {"size": 3}),
    )
    widget.run_button.clicked.emit()
    [text] = asked
    assert "and uniform blends label IDs" in text
    assert "median" not in text and "maximum" not in text
    assert widget.stream is None
    # Keeping every step's labels: nothing to ask, and the result is labels.
    widget.steps.steps[1].op_name.value = "minimum"
    asked.clear()
    widget.run_button.clicked.emit()
    assert asked == []
    wait_for_run(qtbot, widget)
    assert isinstance(widget.output_layer, Labels)
