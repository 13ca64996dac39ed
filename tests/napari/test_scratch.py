"""Scratch outputs in a real napari viewer: where they go, replacing, cleaning up."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import chunkwise
from chunkwise import Status, ops
from chunkwise._napari._scratch import human_size
from chunkwise._sample import synthetic_ct


@pytest.fixture
def volume() -> np.ndarray:
    return synthetic_ct((48, 64, 64), seed=5)


def _dock(viewer):
    return viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")


def _run(widget, qtbot, op):
    widget.steps.steps[0].op_name.value = op
    widget.run_button.clicked.emit()
    stream = widget.stream
    qtbot.waitUntil(lambda: not stream.running, timeout=120_000)
    return widget._last_target


def test_the_scratch_location_is_settable_and_the_size_is_estimated(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    widget.scratch_dir.value = tmp_path / "scratch"
    widget.steps.steps[0].op_name.value = "downsample"
    estimate = chunkwise.estimate_output(volume, ops.downsample(2))
    assert estimate.uncompressed == 24 * 32 * 32
    qtbot.waitUntil(
        lambda: (
            f"({human_size(estimate.uncompressed)} uncompressed)"
            in widget.size_note.value
        ),
        timeout=10_000,
    )
    assert "free" in widget.size_note.value
    target = _run(widget, qtbot, "downsample")
    assert target.parent.parent == tmp_path / "scratch"
    assert chunkwise.output_status(target) is Status.COMPLETE


def test_a_new_run_replaces_the_unsaved_scratch_never_a_named_or_saved_store(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    first = _run(widget, qtbot, "invert")
    kept = tmp_path / "kept.zarr"
    assert widget.save_scratch(kept)
    second = _run(widget, qtbot, "gaussian")
    # Replaced by the new run (deleted in a thread as it starts).
    qtbot.waitUntil(lambda: not first.parent.exists(), timeout=10_000)
    assert second.exists()
    np.testing.assert_array_equal(zarr.open_array(kept)[:], np.invert(volume))
    named = tmp_path / "named.zarr"
    widget.output.value = named
    assert _run(widget, qtbot, "invert") == named
    qtbot.waitUntil(lambda: not second.parent.exists(), timeout=10_000)
    widget.output.value = None
    third = _run(widget, qtbot, "gaussian")
    assert third.exists() and named.exists() and kept.exists()
    assert chunkwise.output_status(named) is Status.COMPLETE


@pytest.mark.parametrize("answer", ["Delete", "Keep"])
def test_unsaved_scratch_is_deleted_on_exit_only_if_the_user_says_so(
    make_napari_viewer, qtbot, tmp_path, volume, answer
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    saved = _run(widget, qtbot, "invert")
    widget.save_scratch(tmp_path / "kept.zarr")
    # A result shown in another layer is not replaced by the next run.
    viewer.open(saved, plugin="chunkwise")
    scratch = _run(widget, qtbot, "gaussian")
    questions = []
    widget.ask = lambda title, text, buttons: (
        questions.append((title, text, buttons)) or answer
    )
    viewer.close()
    ((_, text, buttons),) = questions
    lines = text.splitlines()
    # Each store with its size, and where a copy was saved.
    assert f"{saved} (" in text and f"saved as {tmp_path / 'kept.zarr'}" in text
    assert any(line.startswith(f"{scratch} (") and "kB)" in line for line in lines)
    assert buttons == ("Delete", "Keep")
    assert scratch.parent.exists() == saved.parent.exists() == (answer == "Keep")
    assert (tmp_path / "kept.zarr").exists()  # the saved copy is never touched


def test_a_run_that_fails_to_start_leaves_no_scratch_folder(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    _, widget = _dock(viewer)
    widget.scratch_dir.value = tmp_path
    widget.chunks.value = "1,1"  # refused by the engine: 2 values for 3 axes
    widget.run_button.clicked.emit()
    assert widget.stream is None
    assert list(tmp_path.iterdir()) == []


def test_a_users_folder_named_like_scratch_is_never_deleted(tmp_path):
    from chunkwise._napari._scratch import ScratchOutputs, is_scratch

    study = tmp_path / "chunkwise-study"
    (study / "out.zarr").mkdir(parents=True)
    (study / "notes.txt").write_text("mine")
    scratches = ScratchOutputs()
    scratches.adopt(study / "out.zarr")  # as a resumed recent run would
    assert not is_scratch(study / "out.zarr")
    scratches.drop(study / "out.zarr")
    assert (study / "notes.txt").read_text() == "mine"

    made = scratches.new(tmp_path, "result.zarr")
    made.mkdir()
    assert is_scratch(made)
    (made.parent / "added-by-the-user.txt").write_text("mine too")
    assert not is_scratch(made)  # the folder no longer holds the store alone
    scratches.drop(made)
    assert (made.parent / "added-by-the-user.txt").exists()
    (made.parent / "added-by-the-user.txt").unlink()
    scratches.drop(made)
    assert not made.parent.exists()
