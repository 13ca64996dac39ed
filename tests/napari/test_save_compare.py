"""Save like napari's own, outputs placed by their NGFF metadata, compare that compares,
and the preview above an earlier output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from gui import dock, wait_for_run
from ome_zarr_models.v05.image import Image as NgffImage
from qtpy.QtWidgets import QFileDialog

import chunkwise
from chunkwise import ops
from chunkwise._napari._compare import grid
from chunkwise._napari._save import _ZarrDialog, default_name
from chunkwise._sample import synthetic_ct


@pytest.fixture
def small() -> np.ndarray:
    return synthetic_ct((48, 64, 64), seed=5)


def _run(qtbot, widget):
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)


def test_save_suggests_a_name_and_asks_before_replacing(
    make_napari_viewer, qtbot, tmp_path, small
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.steps.steps[0].op_name.value = "invert"
    _run(qtbot, widget)  # no output chosen: a scratch store
    assert widget.save_button.enabled
    existing = tmp_path / "kept.zarr"
    zarr.create_array(existing, shape=(2,), dtype="uint8")
    offered, questions = [], []
    widget.choose_path = lambda title, suggested: offered.append(suggested) or existing
    widget.ask = lambda title, text, buttons: questions.append(text) or "Cancel"

    widget.save_button.clicked.emit()
    assert offered[0].name == "ct-invert.zarr"
    assert questions == [f"{existing} exists. Replace it?"]
    assert zarr.open_array(existing, mode="r").shape == (2,)  # left alone

    widget.ask = lambda title, text, buttons: "Replace"
    widget.save_button.clicked.emit()
    saved = zarr.open_array(existing, mode="r")
    np.testing.assert_array_equal(saved[:], np.invert(small))
    assert widget.status.value == f"saved: {existing}"
    assert widget.status.path == existing
    # The next chooser starts in the folder used last.
    assert offered[1].parent == tmp_path


def test_save_refuses_to_replace_what_is_not_zarr(
    make_napari_viewer, qtbot, tmp_path, small
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.steps.steps[0].op_name.value = "invert"
    _run(qtbot, widget)
    folder = tmp_path / "photos.zarr"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not zarr")
    widget.ask = lambda title, text, buttons: "Replace"
    assert not widget.save_scratch(folder)
    assert (folder / "holiday.jpg").read_bytes() == b"not zarr"


def test_output_chooser_is_a_zarr_save_dialog_with_a_default_name(
    make_napari_viewer, tmp_path
):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 16, 16), np.uint8), name="heart")
    widget = dock(viewer)
    widget.steps.steps[0].op_name.value = "median"
    offered = []
    widget.choose_path = lambda title, suggested: (
        offered.append(suggested) or tmp_path / "chosen.zarr"
    )
    assert widget.output.choose_btn.text == "Choose…"
    widget.output.choose_btn.changed.emit(True)
    assert offered[0].name == "heart-median.zarr"
    assert widget.output.value == tmp_path / "chosen.zarr"
    widget.format.value = "ome-zarr"
    widget.output.choose_btn.changed.emit(True)
    assert offered[1] == tmp_path / "heart-median.ome.zarr"


def test_the_dialog_takes_an_existing_store_as_the_choice(qtbot, tmp_path):
    existing = tmp_path / "old.zarr"
    zarr.create_array(existing, shape=(2,), dtype="uint8")
    dialog = _ZarrDialog(None, "Save", str(tmp_path), "Zarr (*.zarr)")
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.selectFile(existing.name)
    dialog.accept()  # what Save does with the name typed
    assert dialog.result() == QFileDialog.DialogCode.Accepted
    assert Path(dialog.selectedFiles()[0]) == existing
    # A plain folder is still entered, as in any save dialog.
    (tmp_path / "sub").mkdir()
    other = _ZarrDialog(None, "Save", str(tmp_path), "Zarr (*.zarr)")
    other.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    other.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    other.selectFile("sub")
    other.accept()
    assert other.result() != QFileDialog.DialogCode.Accepted


def test_default_name_is_safe():
    assert default_name("a/b", ops.invert()) == "a_b-invert.zarr"
    assert default_name("ct", ops.gaussian(1), ome=True) == "ct-gaussian.ome.zarr"


def test_ome_zarr_output_records_the_layers_place_for_other_readers(
    make_napari_viewer, qtbot, tmp_path, small
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(small, name="ct", scale=(2.0, 1.0, 1.0))
    layer.translate = (5.0, 0.0, 0.0)
    widget = dock(viewer)
    step = widget.steps.steps[0]
    step.op_name.value = "downsample"
    step.fields["factor"].value = 2
    widget.format.value = "ome-zarr"
    widget.output.value = tmp_path / "down.zarr"
    _run(qtbot, widget)
    shown = widget.output_layer

    group = zarr.open_group(tmp_path / "down.zarr", mode="r")
    image = NgffImage.from_zarr(group)  # valid NGFF 0.5
    dataset = image.ome_attributes.multiscales[0].datasets[0]
    scale, translation = dataset.coordinateTransformations
    np.testing.assert_allclose(scale.scale, shown.scale)
    np.testing.assert_allclose(translation.translation, shown.translate)
    np.testing.assert_allclose(scale.scale, (4.0, 2.0, 2.0))
    np.testing.assert_allclose(translation.translation, (6.0, 0.5, 0.5))

    # Opened again, without the widget: on the input.
    (ours,) = viewer.open(str(tmp_path / "down.zarr"), plugin="chunkwise")
    np.testing.assert_allclose(ours.scale, shown.scale)
    np.testing.assert_allclose(ours.translate, shown.translate)
    # napari-ome-zarr reads the scale from the same metadata (0.10 drops the
    # translation: its layer's voxel 0 lies at the origin).
    (theirs,) = viewer.open(str(tmp_path / "down.zarr"), plugin="napari-ome-zarr")
    np.testing.assert_allclose(theirs.scale, shown.scale)


def _ran(make_napari_viewer, qtbot, small, op_name="gaussian"):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(small, name="ct")
    viewer.add_image(small[::-1].copy(), name="other")
    widget = dock(viewer)
    widget.steps.steps[0].op_name.value = op_name
    widget.input.value = viewer.layers["ct"]
    _run(qtbot, widget)
    return viewer, widget


def test_compare_titles_the_panels_links_contrast_and_fills_the_canvas(
    make_napari_viewer, qtbot, small
):
    viewer, widget = _ran(make_napari_viewer, qtbot, small)
    ct, out = viewer.layers["ct"], widget.output_layer
    widget.compare.value = True
    assert [layer.name for layer in viewer.layers if layer.visible] == [
        "ct",
        out.name,
    ]
    assert ct.name_overlay.visible and out.name_overlay.visible
    assert grid(viewer).enabled
    height, width = viewer.canvas.size
    assert tuple(grid(viewer).shape) == ((1, 2) if width >= height else (2, 1))

    ct.contrast_limits = (10.0, 90.0)
    assert tuple(out.contrast_limits) == (10.0, 90.0)
    out.contrast_limits = (20.0, 70.0)
    assert tuple(ct.contrast_limits) == (20.0, 70.0)

    widget.compare.value = False
    assert not grid(viewer).enabled
    assert not ct.name_overlay.visible
    assert viewer.layers["other"].visible
    ct.contrast_limits = (0.0, 50.0)
    assert tuple(out.contrast_limits) == (20.0, 70.0)  # unlinked

    if os.environ.get("CHUNKWISE_SCREENSHOTS"):
        widget.compare.value = True
        qtbot.wait(300)
        target = Path(os.environ["CHUNKWISE_SCREENSHOTS"]) / "compare.png"
        viewer.screenshot(str(target), canvas_only=False, flash=False)


def test_compare_of_another_dtype_is_not_linked(make_napari_viewer, qtbot, small):
    viewer, widget = _ran(make_napari_viewer, qtbot, small, op_name="unsharp_mask")
    ct, out = viewer.layers["ct"], widget.output_layer
    assert out.dtype != ct.dtype
    widget.compare.value = True
    assert not widget._side_by_side.linked
    before = tuple(out.contrast_limits)
    ct.contrast_limits = (10.0, 90.0)
    assert tuple(out.contrast_limits) == before


def test_a_narrow_canvas_stacks_the_panels():
    from chunkwise._napari._compare import grid_shape

    assert grid_shape((900, 400), (64, 64)) == (2, 1)
    assert grid_shape((400, 900), (64, 64)) == (1, 2)
    # A tall, thin volume goes side by side even on a square canvas.
    assert grid_shape((800, 800), (200, 50)) == (1, 2)


def test_preview_is_raised_above_an_earlier_output(
    make_napari_viewer, qtbot, tmp_path, small
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.preview.value = True
    qtbot.waitUntil(lambda: widget._preview.layer is not None, timeout=10_000)
    # A multiscale output is a new layer, added above the preview.
    widget.format.value = "ome-zarr"
    widget.output.value = tmp_path / "out.zarr"
    _run(qtbot, widget)
    qtbot.waitUntil(lambda: widget.output_layer in viewer.layers, timeout=10_000)
    preview = widget._preview.layer
    assert preview in viewer.layers  # a multiscale output does not take it over
    assert list(viewer.layers).index(widget.output_layer) > list(viewer.layers).index(
        preview
    )
    widget.steps.steps[0].fields["sigma"].value = 3.0  # the user tunes on
    qtbot.waitUntil(lambda: viewer.layers[-1] == widget._preview.layer)
    plane = viewer.dims.current_step[0]
    expected = chunkwise.compute_region(
        small, ops.gaussian(3.0), (slice(plane, plane + 1), slice(None), slice(None))
    )
    qtbot.waitUntil(
        lambda: np.array_equal(widget._preview.layer.data, expected), timeout=10_000
    )


def test_napari_save_as_ome_zarr_records_the_layers_place(
    make_napari_viewer, tmp_path, small
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(small, name="ct", scale=(3.0, 0.5, 0.5))
    layer.translate = (1.0, 2.0, 4.0)
    target = tmp_path / "ct.ome.zarr"
    viewer.layers.selection = {layer}
    viewer.layers.save(str(target), selected=True, plugin="chunkwise")
    group = zarr.open_group(target, mode="r")
    image = NgffImage.from_zarr(group)
    scale, translation = (
        image.ome_attributes.multiscales[0].datasets[0].coordinateTransformations
    )
    np.testing.assert_allclose(scale.scale, (3.0, 0.5, 0.5))
    np.testing.assert_allclose(translation.translation, (1.0, 2.0, 4.0))
    np.testing.assert_array_equal(group["0"][:], small)
    (again,) = viewer.open(str(target), plugin="chunkwise")
    np.testing.assert_allclose(again.scale, layer.scale)
    np.testing.assert_allclose(again.translate, layer.translate)
    # Saved again over it: the image is replaced, not refused.
    viewer.layers.save(str(target), selected=True, plugin="chunkwise")
