"""The kernel and footprint editors in a real viewer: presets, typed nested lists
and .npy files, run exactly as scipy computes them."""

from __future__ import annotations

import json

import numpy as np
import zarr
from gui import dock, wait_for_run
from scipy import ndimage

from chunkwise import ops
from chunkwise._napari._form import PICK_PRESET
from chunkwise._sample import synthetic_ct


def test_a_kernel_preset_fills_the_text_and_runs_as_scipys_convolve(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer()
    data = synthetic_ct((24, 32, 40), seed=2).astype(np.float32)
    viewer.add_image(data, name="ct")
    widget = dock(viewer)
    step = widget.steps.steps[0]
    step.op_name.value = "convolve"
    editor = step.fields["kernel"]._editors[0]
    editor.preset.value = "sobel-x"
    assert editor.preset.value == PICK_PRESET  # a menu: ready for the next pick
    kernel = ops.kernel_preset("sobel-x")
    assert json.loads(editor.text.value) == kernel.astype(int).tolist()
    assert widget.operation() == ops.convolve(kernel)
    widget.output.value = tmp_path / "out.zarr"
    widget.chunks.value = "8,16,16"  # the 3-voxel kernel crosses every block face
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    np.testing.assert_array_equal(
        zarr.open_array(tmp_path / "out.zarr", mode="r")[:],
        ndimage.convolve(data, kernel),
        strict=True,
    )


def test_kernels_typed_or_read_from_npy_and_footprints_by_name_or_lists(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer()
    viewer.add_image(synthetic_ct((16, 24, 24), seed=3), name="ct")
    widget = dock(viewer)
    step = widget.steps.steps[0]
    step.op_name.value = "correlate"
    editor = step.fields["kernel"]._editors[0]
    editor.text.value = "[[[1, 2, 1]]]"
    assert widget.operation() == ops.correlate([[[1, 2, 1]]])
    psf = np.random.default_rng(4).random((3, 5, 5))
    np.save(tmp_path / "psf.npy", psf)
    editor.text.value = str(tmp_path / "psf.npy")
    np.testing.assert_array_equal(np.array(widget.operation().kernel), psf)
    # A broken kernel is refused in the status line, in one line, naming it.
    editor.text.value = "[[1, 2], [3]"
    assert "kernel" in widget.status.value and "\n" not in widget.status.value
    # A recorded kernel comes back into the field as text that gives it back.
    step.fields["kernel"].value = ((1.0, -1.0),)
    assert widget.operation() == ops.correlate([[1.0, -1.0]])

    step.op_name.value = "median"
    footprint = step.fields["footprint"]._editors[0]
    footprint.preset.value = "cross"
    assert footprint.text.value == "cross"
    assert widget.operation() == ops.median(footprint="cross")
    footprint.text.value = "[[0, 1, 0], [1, 1, 1], [0, 1, 0]]"
    assert widget.operation() == ops.median(
        footprint=[[False, True, False], [True, True, True], [False, True, False]]
    )
    footprint.text.value = ""
    assert widget.operation() == ops.median()  # no footprint: the size's box


def test_kernel_presets_fit_the_input_layers_axes(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    plane = synthetic_ct((1, 48, 40), seed=6)[0].astype(np.float32)
    viewer.add_image(plane, name="slice")
    viewer.add_image(synthetic_ct((8, 16, 16), seed=6), name="volume")
    widget = dock(viewer)
    widget.input.value = viewer.layers["slice"]
    step = widget.steps.steps[0]
    step.op_name.value = "correlate"
    editor = step.fields["kernel"]._editors[0]
    # A 2D image has no z axis: no z presets, and the others are 2D.
    assert "sobel-z" not in editor.preset.choices
    editor.preset.value = "laplacian"
    assert json.loads(editor.text.value) == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    widget.output.value = tmp_path / "edges.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    np.testing.assert_array_equal(
        zarr.open_array(tmp_path / "edges.zarr", mode="r")[:],
        ndimage.correlate(plane, ops.kernel_preset("laplacian", 2)),
        strict=True,
    )
    # A step added later, and the volume chosen after: 3D presets again.
    widget.input.value = viewer.layers["volume"]
    assert "sobel-z" in editor.preset.choices
    added = widget.steps.append_step("convolve")
    assert "sobel-z" in added.fields["kernel"]._editors[0].preset.choices
