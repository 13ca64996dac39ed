"""The tidy form: folded output options, tooltips, numbered steps, remembered values,
refused values, a readable status line, and a window that fits the screen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gui import dock
from qtpy.QtWidgets import QApplication, QLineEdit

from chunkwise import ChunkwiseError, ops
from chunkwise._napari._form import ChainEditor, StepEditor
from chunkwise._napari._main import window_size
from chunkwise._napari._status import StatusLine, progress_text
from chunkwise._sample import synthetic_ct


@pytest.fixture
def small() -> np.ndarray:
    return synthetic_ct((48, 64, 64), seed=5)


def test_every_parameter_of_every_operation_has_its_doc_as_tooltip(qtbot):
    for name in ops.CATALOGUE:
        step = StepEditor(name)
        for field_name, field in step.fields.items():
            parameter = field.parameter
            assert parameter.doc, (name, field_name)
            assert field.tooltip and "``" not in field.tooltip
            # Each editor says it too, since the pointer rests on the editor.
            assert all(editor.tooltip for editor in field._editors)
    fields = StepEditor("gaussian").fields
    assert "voxels" in fields["sigma"].tooltip  # sigma's unit
    assert "constant" in fields["cval"].tooltip
    assert "standard deviations" in fields["truncate"].tooltip
    assert "Boundary mode" in fields["mode"].tooltip
    # "As for `gaussian`" is followed to gaussian's words.
    assert (
        "standard deviations" in StepEditor("unsharp_mask").fields["truncate"].tooltip
    )


def test_values_past_the_old_limits_are_kept_not_clamped(qtbot):
    field = StepEditor("gaussian").fields["sigma"]
    field.value = 1000.0
    assert field.value == 1000.0
    size = StepEditor("median").fields["size"]
    size.value = 150
    assert size.value == 150
    step = StepEditor("upsample")
    step.fields["factor"].value = 100
    assert step.operation() == ops.upsample(100)


def test_parameters_are_remembered_per_operation(qtbot):
    step = StepEditor("gaussian")
    step.fields["sigma"].value = (1.0, 2.0, 3.0)  # per axis
    step.fields["mode"].value = "nearest"
    step.op_name.value = "median"
    step.fields["size"].value = 7
    step.op_name.value = "gaussian"
    assert step.fields["sigma"].value == (1.0, 2.0, 3.0)
    assert step.fields["mode"].value == "nearest"
    assert step.operation() == ops.gaussian((1.0, 2.0, 3.0), mode="nearest")
    step.op_name.value = "median"
    assert step.fields["size"].value == 7
    # Optional parameters come back as they were left: "same as input", "auto".
    step.op_name.value = "rescale"
    step.fields["dtype"].value = "uint8"
    step.fields["out_range"].value = (0.0, 10.0)
    step.op_name.value = "invert"
    step.op_name.value = "rescale"
    assert step.fields["dtype"].value == "uint8"
    assert step.fields["out_range"].value == (0.0, 10.0)


def test_add_step_asks_which_operation_and_steps_are_numbered(qtbot):
    editor = ChainEditor()
    actions = {a.text(): a for a in editor.add_menu.actions()}
    assert set(actions) == set(ops.CATALOGUE)
    assert editor.add_step.native.menu() is editor.add_menu
    actions["median"].trigger()
    actions["downsample"].trigger()
    names = [step.op_name.value for step in editor.steps]
    assert names == ["gaussian", "median", "downsample"]
    assert [step.number.value for step in editor.steps] == ["1.", "2.", "3."]
    editor.steps[2].up.changed.emit(True)  # move downsample up
    assert [step.op_name.value for step in editor.steps] == [
        "gaussian",
        "downsample",
        "median",
    ]
    assert [step.number.value for step in editor.steps] == ["1.", "2.", "3."]


def test_out_of_range_values_are_refused_in_the_status_line(
    make_napari_viewer, qtbot, small
):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    sigma = widget.steps.steps[0].fields["sigma"]
    sigma.value = 1000.0
    assert sigma.value == 1000.0  # not clamped
    assert "not valid" in widget.status.value
    assert "sigma 1000" in widget.status.value
    sigma.value = 2.0
    assert widget.status.value == ""  # its own message goes once the value is fine
    step = widget.steps.steps[0]
    step.op_name.value = "gamma"
    step.fields["gamma"].value = 0.0
    assert "gamma must be > 0" in widget.status.value


def test_the_form_refuses_a_value_as_the_command_line_and_recipes_do(
    make_napari_viewer, qtbot, small
):
    # One validation: the operation's own, whether from text, a record or the form.
    with pytest.raises(ChunkwiseError) as text:
        ops.parse("gamma:gamma=0")
    with pytest.raises(ChunkwiseError) as record:
        ops.from_dict({"op": "gamma", "gamma": 0})
    assert str(text.value) == str(record.value)
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    step = widget.steps.steps[0]
    step.op_name.value = "gamma"
    step.fields["gamma"].value = 0.0
    assert str(text.value) in widget.status.value


def test_output_options_fold_into_a_collapsed_section(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((8, 32, 32), np.uint8), name="ct")
    widget = dock(viewer)
    folding = widget.output_section.collapsible
    assert folding.text().startswith("Output")
    assert not folding.isExpanded()
    # Folded: the options take no height in the dock.
    assert folding.content().maximumHeight() == 0
    for option in (widget.format, widget.codec, widget.chunks, widget.n_jobs):
        assert option.native.visibleRegion().isEmpty()
        assert option.tooltip
    assert widget.output.native.isAncestorOf(widget.output.choose_btn.native)
    assert folding.content().isAncestorOf(widget.output.native)
    folding.expand(animate=False)
    assert folding.content().maximumHeight() > 0
    qtbot.waitUntil(lambda: not widget.codec.native.visibleRegion().isEmpty())


def test_status_line_keeps_its_width_and_offers_the_path(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((8, 32, 32), np.uint8), name="ct")
    widget = dock(viewer)
    QApplication.processEvents()
    dock_width = widget.native.width()
    long = tmp_path / ("a-very-long-folder-name-" * 8) / "result.zarr"
    widget.status.show(f"done: {long}", long)
    qtbot.wait(50)
    assert widget.native.width() <= dock_width + 1
    assert widget.status.value == f"done: {long}"
    assert widget.status.line.native.toolTip() == f"done: {long}"
    assert "…" in widget.status.shown  # the path is elided in its middle
    assert widget.status.copy_button.native.isVisible()
    widget.status.copy_button.changed.emit(True)
    assert QApplication.clipboard().text() == str(long)
    opened = []
    widget.status.reveal = opened.append
    widget.status.reveal_button.changed.emit(True)
    assert opened == [long.parent]


def test_3d_hint_is_readable_not_a_sliver(make_napari_viewer, qtbot, small):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.preview.value = True
    viewer.dims.ndisplay = 3
    widget._update_preview()
    assert "2D view" in widget.status.value
    qtbot.wait(50)
    label = widget.status.line.native
    line = label.fontMetrics().lineSpacing()
    assert label.height() >= line
    assert label.heightForWidth(label.width()) <= label.height()
    if os.environ.get("CHUNKWISE_SCREENSHOTS"):
        target = Path(os.environ["CHUNKWISE_SCREENSHOTS"]) / "hint_3d.png"
        widget.native.grab().save(str(target))


def test_progress_text_is_honest():
    # Too little measured: no throughput, no time left.
    assert progress_text(1, 100, 1, 10**6, 0.01) == "1/100 blocks"
    assert progress_text(5, 100, 5, 10**6, 0.5) == "5/100 blocks"
    # Small throughputs keep their digits instead of reading "0 MB/s".
    text = progress_text(10, 100, 10, 300_000, 2.0)
    assert "150 kB/s" in text
    assert "about 18 s left" in text
    # Resumed blocks count as done, not as computed by this run.
    assert "about 80 s left" in progress_text(60, 100, 10, 10**7, 20.0)
    assert "about 33 min left" in progress_text(10, 1000, 10, 10**7, 20.0)


def test_status_line_alone(qtbot):
    line = StatusLine()
    line.value = "hello"
    assert line.value == "hello"
    assert not line.copy_button.visible
    line.show("x", Path("/tmp/x.zarr"))
    assert line.path == Path("/tmp/x.zarr")


def test_window_size_fits_the_screen():
    assert window_size((1280, 800)) == (1216, 760)
    assert window_size((2560, 1440)) == (1600, 1000)


def test_screenshot_of_the_docked_widget(make_napari_viewer, qtbot, small, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    widget.steps.add_menu.actions()[list(ops.CATALOGUE).index("median")].trigger()
    widget.status.show(
        "done: " + str(tmp_path / ("long-folder-" * 10) / "ct-gaussian.zarr"),
        tmp_path,
    )
    qtbot.wait(200)
    # Kept where CHUNKWISE_SCREENSHOTS says, to be looked at.
    target = Path(os.environ.get("CHUNKWISE_SCREENSHOTS", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(target / "form.png"), canvas_only=False, flash=False)
    widget.output_section.collapsible.expand(animate=False)
    qtbot.wait(200)
    widget.native.grab().save(str(target / "form_expanded.png"))
    assert (target / "form.png").stat().st_size > 0


def test_cancelled_status_says_it_once(make_napari_viewer, tmp_path):
    import chunkwise

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 32, 32), np.uint8), name="ct")
    widget = dock(viewer)
    widget._last_target = tmp_path / "out.zarr"
    widget._on_end(chunkwise.Cancelled("cancelled after 3 of 10 blocks; resume"))
    assert widget.status.value == "cancelled after 3 of 10 blocks; resume"
    assert widget.status.path == tmp_path / "out.zarr"


def test_finer_settings_fold_away_and_still_count(make_napari_viewer, qtbot, small):
    viewer = make_napari_viewer()
    viewer.add_image(small, name="ct")
    widget = dock(viewer)
    step = widget.steps.steps[0]
    assert not step.more.collapsible.isExpanded()
    folded = {field.parameter.name for field in step.more.inner}
    assert folded == {"cval", "truncate", "radius", "dtype", "order"}
    assert {"sigma", "mode"} <= set(step.fields) - folded
    # radius is None (the operation's own) while its box reads "auto": never 0.
    radius = step.fields["radius"]
    box = radius._editors[0].native
    assert radius.value is None and box.findChild(QLineEdit).text() == "auto"
    assert widget.operation() == ops.gaussian(1.0)
    box.stepUp()  # one step up from "auto": the lowest radius
    assert radius.value == 0 and widget.operation() == ops.gaussian(1.0, radius=0)
    radius.value = 2
    assert widget.operation() == ops.gaussian(1.0, radius=2)
    # A folded field's change is heard like any other (preview, checks, estimate).
    heard = []
    step.changed.connect(lambda *_: heard.append(True))
    step.fields["cval"].value = 3.0
    assert heard and widget.operation() == ops.gaussian(1.0, radius=2, cval=3.0)
    # A mode per axis, where the operation takes one.
    step.fields["mode"].value = ("wrap", "reflect", "nearest")
    assert widget.operation().mode == ("wrap", "reflect", "nearest")
    step.op_name.value = "median"
    step.fields["mode"].value = ("wrap", "reflect", "nearest")
    assert "mode" in widget.status.value  # scipy's median takes one mode
