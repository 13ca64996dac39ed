"""The Recipe menu and Run on selected layers, in a real napari viewer.

Recipes saved or copied from the widget are run by the real command line (in a
subprocess) and by Python, and their stores compared byte for byte with the
widget's own run; runs on several layers are checked against scipy.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from gui import dock, hold_runs, wait_for_run
from qtpy.QtCore import QThreadPool
from qtpy.QtWidgets import QApplication
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._sample import synthetic_ct
from conftest import reference_downsample

SRC = Path(chunkwise.__file__).parent.parent
#: The command line and scripts run as a user's shell runs them: the installed
#: ``chunkwise`` on the PATH, this checkout's code first.
ENV = {
    **os.environ,
    "PYTHONPATH": str(SRC),
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
}
#: Files of a store that describe it rather than hold its chunks.
METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}


@pytest.fixture
def volume() -> np.ndarray:
    return synthetic_ct((32, 48, 48), seed=3)


def _on_disk(viewer, path: Path, data: np.ndarray, chunks=(16, 16, 16)):
    """Write ``data`` as a Zarr array at ``path`` and open it with the plugin."""
    zarr.create_array(path, data=data, chunks=chunks)
    (layer,) = viewer.open(str(path), plugin="chunkwise")
    return layer


def _chunk_bytes(path: Path) -> dict[str, bytes]:
    """Each chunk file of the store at ``path``, by its path in the store."""
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file() and file.name not in METADATA
    }


def _same_store(made: Path, reference: Path) -> None:
    """Same array (shape, dtype, chunks, format, values) and the same chunk bytes."""
    a, b = zarr.open_array(made, mode="r"), zarr.open_array(reference, mode="r")
    assert (a.shape, a.dtype, a.chunks) == (b.shape, b.dtype, b.chunks)
    assert a.metadata.zarr_format == b.metadata.zarr_format
    np.testing.assert_array_equal(a[:], b[:])
    chunks = _chunk_bytes(made)
    assert chunks and chunks == _chunk_bytes(reference)


def _set_form(widget) -> chunkwise.ops.Operation:
    """Two steps with parameters off their defaults, and output settings too."""
    first = widget.steps.steps[0]
    first.op_name.value = "gaussian"
    first.fields["sigma"].value = (1.0, 1.5, 2.0)
    first.fields["mode"].value = "nearest"
    second = widget.steps.append_step("downsample")
    second.fields["factor"].value = 2
    second.fields["method"].value = "max"
    widget.chunks.value = "8,16,16"
    widget.codec.value = "lz4"
    widget.zarr_format.value = 2
    widget.n_jobs.value = 2
    return chunkwise.chain(
        ops.gaussian((1.0, 1.5, 2.0), mode="nearest"), ops.downsample(2, "max")
    )


def _reference(data: np.ndarray) -> np.ndarray:
    smooth = ndimage.gaussian_filter(data, (1.0, 1.5, 2.0), mode="nearest")
    return reference_downsample(smooth, 2, "max")


def _cli_run(recipe: Path, source: Path, out: Path) -> subprocess.CompletedProcess:
    """``chunkwise run --recipe`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "chunkwise.cli", "run", "--recipe", str(recipe),
         str(source), str(out)],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _run_into(qtbot, widget, target: Path) -> None:
    widget.output.value = target
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.status.value == f"done: {target}"


def test_saved_recipe_runs_on_the_command_line_to_the_same_bytes(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    _on_disk(viewer, tmp_path / "in.zarr", volume)
    widget = dock(viewer)
    op = _set_form(widget)
    recipe_file = tmp_path / "r.json"
    offered = []
    widget.recipes.choose_file = lambda title, suggested, save: (
        offered.append((suggested.suffix, save)) or recipe_file
    )
    widget.recipes.save_action.trigger()
    assert offered == [(".json", True)]
    assert widget.status.value == f"recipe saved: {recipe_file}"
    record = json.loads(recipe_file.read_text())
    assert record["output"] == {
        "format": "zarr",
        "chunks": [8, 16, 16],
        "zarr_format": 2,
        "codec": "lz4",
    }
    assert chunkwise.Recipe.load(recipe_file).operation == op

    _run_into(qtbot, widget, tmp_path / "gui.zarr")
    done = _cli_run(recipe_file, tmp_path / "in.zarr", tmp_path / "cli.zarr")
    assert done.returncode == 0, done.stderr
    _same_store(tmp_path / "cli.zarr", tmp_path / "gui.zarr")
    gui = zarr.open_array(tmp_path / "gui.zarr", mode="r")
    np.testing.assert_array_equal(gui[:], _reference(volume))
    assert gui.chunks == (8, 16, 16) and gui.metadata.zarr_format == 2


def test_a_region_saved_in_the_recipe_computes_the_same_chunks(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    _on_disk(viewer, tmp_path / "in.zarr", volume)
    viewer.add_points([[2, 3, 4], [12, 20, 30]], name="marks")
    widget = dock(viewer)
    widget.steps.steps[0].fields["sigma"].value = 2.0
    widget.chunks.value = "8,8,8"
    widget.region.value = "marks"
    recipe_file = tmp_path / "r.yaml"
    widget.recipes.choose_file = lambda title, suggested, save: recipe_file
    widget.recipes.save_action.trigger()
    assert chunkwise.Recipe.load(recipe_file).region == "2:13,3:21,4:31"
    widget.output.value = tmp_path / "gui.zarr"
    widget.run_button.clicked.emit()
    wait_for_run(qtbot, widget)
    assert widget.status.value.startswith("region done")
    done = _cli_run(recipe_file, tmp_path / "in.zarr", tmp_path / "cli.zarr")
    assert done.returncode == 0, done.stderr
    _same_store(tmp_path / "cli.zarr", tmp_path / "gui.zarr")
    # The chunks over the region hold scipy's values; the rest was not computed.
    written = zarr.open_array(tmp_path / "gui.zarr", mode="r")
    box = (slice(0, 16), slice(0, 24), slice(0, 32))
    np.testing.assert_array_equal(
        written[box], ndimage.gaussian_filter(volume, 2.0)[box]
    )
    chunks = [name for name in _chunk_bytes(tmp_path / "gui.zarr") if name[0] == "c"]
    assert 2 * 3 * 4 <= len(chunks) < 4 * 6 * 6  # whole blocks, not the volume


def _form_state(widget) -> tuple:
    return (
        [step.to_dict() for step in widget.steps.operation().steps],
        widget.format.value,
        widget.chunks.value,
        widget.codec.value,
        widget.zarr_format.value,
    )


def test_load_recipe_fills_the_form_and_a_bad_one_changes_nothing(
    make_napari_viewer, tmp_path, volume
):
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="ct")
    widget = dock(viewer)
    recipe = chunkwise.Recipe(
        chunkwise.chain(
            ops.median(size=(1, 3, 3), mode="wrap"),
            ops.threshold(value=90.5),
            ops.maximum(size=3, mode="constant"),
        ),
        format="ome-zarr",
        chunks=(16, 24, 24),
        codec="gzip",
        zarr_format=2,
        levels=2,
    )
    path = recipe.save(tmp_path / "r.yaml")
    widget.recipes.choose_file = lambda title, suggested, save: path
    widget.recipes.load_action.trigger()
    loaded = widget.steps.operation()
    as_json = json.loads(json.dumps([step.to_dict() for step in loaded.steps]))
    assert as_json == recipe.to_dict()["operations"]
    assert loaded == recipe.operation
    assert [step.op_name.value for step in widget.steps.steps] == [
        "median",
        "threshold",
        "maximum",
    ]
    assert _form_state(widget)[1:] == ("ome-zarr", "16,24,24", "gzip", 2)
    # What the form has no field for is said, not silently dropped.
    assert widget.status.value == f"recipe loaded: {path}; not in the form: levels=2"

    before = _form_state(widget)
    bad = {
        "chunks.json": '{"chunkwise_recipe": 1, "operations": ["invert"], '
        '"output": {"chunks": [0, 64, 64]}}',
        "op.json": '{"chunkwise_recipe": 1, "operations": ["gausian:sigma=2"]}',
        "broken.yaml": "chunkwise_recipe: 1\noperations: [\n",
        "missing.json": None,
        # A recorded run on chosen axes: no form field says which.
        "axes.json": chunkwise.Recipe(ops.on_axes(ops.gaussian(1.0), (1, 2))),
    }
    for name, text in bad.items():
        if isinstance(text, chunkwise.Recipe):
            text.save(tmp_path / name)
        elif text is not None:
            (tmp_path / name).write_text(text)
        widget.recipes.choose_file = lambda title, suggested, save, n=name: tmp_path / n
        widget.recipes.load_action.trigger()
        message = widget.status.value
        assert "\n" not in message and name in message, message
        assert _form_state(widget) == before, name
    assert "not loaded into the form" in widget.status.value


def test_copied_command_line_and_python_give_the_same_bytes(
    make_napari_viewer, qtbot, tmp_path, volume
):
    viewer = make_napari_viewer()
    _on_disk(viewer, tmp_path / "in.zarr", volume)
    widget = dock(viewer)
    _set_form(widget)
    clipboard = QApplication.clipboard()

    widget.output.value = tmp_path / "cli out.zarr"  # quoted in the command
    widget.recipes.command_action.trigger()
    command = clipboard.text()
    assert command.startswith("chunkwise run ")
    widget.output.value = tmp_path / "py.zarr"
    widget.recipes.python_action.trigger()
    script = clipboard.text()
    assert widget.status.value == f"copied as Python: it writes {tmp_path / 'py.zarr'}"

    _run_into(qtbot, widget, tmp_path / "gui.zarr")
    done = subprocess.run(
        shlex.split(command), env=ENV, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _same_store(tmp_path / "cli out.zarr", tmp_path / "gui.zarr")
    _same_store(tmp_path / "py.zarr", tmp_path / "gui.zarr")
    np.testing.assert_array_equal(
        zarr.open_array(tmp_path / "gui.zarr", mode="r")[:], _reference(volume)
    )

    # A layer held in memory has no path: the command says where it goes.
    viewer.add_image(volume, name="in memory")
    widget.input.value = viewer.layers["in memory"]
    widget.recipes.command_action.trigger()
    assert " INPUT.zarr " in clipboard.text()
    assert "in memory" in widget.status.value and "INPUT.zarr" in widget.status.value


# --- Run on selected layers ----------------------------------------------------------


@pytest.fixture
def hold(monkeypatch) -> threading.Event:
    """Holds each run after its first block until set, or until it is cancelled."""
    release = hold_runs(monkeypatch)
    yield release
    release.set()


def _layers(viewer) -> dict[str, np.ndarray]:
    """Three volumes and a plane, each its own layer; the first three selected."""
    data = {
        name: synthetic_ct((32, 32, 32), seed=seed) for seed, name in enumerate("abc")
    }
    for name, values in data.items():
        viewer.add_image(values, name=name)
    viewer.add_image(synthetic_ct((32, 32, 32), seed=9)[0], name="plane")
    viewer.layers.selection = {viewer.layers[name] for name in "abc"}
    return data


def _start(widget, chunks: str = "16,16,16") -> None:
    widget.steps.steps[0].op_name.value = "gaussian"
    widget.steps.steps[0].fields["sigma"].value = 1.5
    widget.chunks.value = chunks
    widget.n_jobs.value = 1
    widget.recipes.menu.aboutToShow.emit()
    widget.sequence.action.trigger()


def _sequence_over(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.sequence.running, timeout=120_000)


def test_run_on_selected_layers_runs_each_and_one_failing_stops_none(
    make_napari_viewer, qtbot
):
    viewer = make_napari_viewer()
    data = _layers(viewer)
    # The plane fails: chunks of three axes do not fit its two.
    viewer.layers.selection.add(viewer.layers["plane"])
    viewer.layers.move(viewer.layers.index("plane"), 1)  # between a and b
    widget = dock(viewer)
    widget.recipes.menu.aboutToShow.emit()
    assert widget.sequence.action.text() == "Run on selected layers (4)"
    widget.input.value = viewer.layers["c"]
    _start(widget)
    _sequence_over(qtbot, widget)

    outcomes = widget.sequence.outcomes
    assert list(outcomes) == ["a", "plane", "b", "c"]
    assert [outcomes[n] for n in "abc"] == ["done"] * 3
    assert outcomes["plane"].startswith("failed: ") and "chunks" in outcomes["plane"]
    assert widget.status.value == "3 of 4 layers done; failed: plane"
    for name, values in data.items():
        shown = viewer.layers[f"{name} gaussian"]  # an output layer each
        np.testing.assert_array_equal(
            np.asarray(shown.data[:]), ndimage.gaussian_filter(values, 1.5)
        )
        array = getattr(shown.data, "chunkwise_input", shown.data)
        store = Path(array.store_path.store.root)
        assert chunkwise.output_status(store) is chunkwise.Status.COMPLETE
    assert "plane gaussian" not in viewer.layers
    assert widget.input.value.name == "c"  # as the user left it
    assert "1. a: done" in widget.sequence.note.value
    assert "2. plane: failed" in widget.sequence.note.value


def test_cancel_stops_the_sequence_and_a_removed_layer_is_skipped(
    make_napari_viewer, qtbot, hold
):
    viewer = make_napari_viewer()
    data = _layers(viewer)
    widget = dock(viewer)
    _start(widget)
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=120_000)
    # Removed while it waits its turn: skipped, and the others go on.
    viewer.layers.remove("b")
    hold.set()
    _sequence_over(qtbot, widget)
    outcomes = widget.sequence.outcomes
    assert outcomes == {
        "a": "done",
        "b": "skipped: the layer was removed",
        "c": "done",
    }
    for name in "ac":
        np.testing.assert_array_equal(
            np.asarray(viewer.layers[f"{name} gaussian"].data[:]),
            ndimage.gaussian_filter(data[name], 1.5),
        )

    # Cancel while the first layer runs: the others never start.
    hold.clear()
    viewer.layers.selection = {viewer.layers[name] for name in "ac"}
    for name in ("a gaussian", "c gaussian"):
        viewer.layers.remove(name)
    _start(widget)
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=120_000)
    stream, target = widget.stream, widget._last_target
    widget.cancel_button.clicked.emit()
    _sequence_over(qtbot, widget)
    assert widget.sequence.outcomes == {
        "a": "cancelled",
        "c": "skipped: cancelled before it ran",
    }
    assert widget.stream is stream  # no run after the cancelled one
    assert chunkwise.output_status(target) is chunkwise.Status.CANCELLED
    assert "c gaussian" not in viewer.layers
    assert widget.status.value == "0 of 2 layers done; cancelled"


def test_closing_the_dock_mid_sequence_leaves_nothing_running(
    make_napari_viewer, qtbot, hold
):
    viewer = make_napari_viewer()
    _layers(viewer)
    dock_widget, widget = viewer.window.add_plugin_dock_widget(
        "chunkwise", "Process volume"
    )
    _start(widget)
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=120_000)
    stream = widget.stream
    viewer.window.remove_dock_widget(dock_widget)
    assert stream.over.is_set()  # the close waited for the run to record its end
    assert not widget.sequence.running
    assert widget.sequence.outcomes == {
        "a": "cancelled: the dock was closed",
        "b": "skipped: the dock was closed",
        "c": "skipped: the dock was closed",
    }
    # No run starts afterwards, and every worker thread ends.
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=30_000)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        qtbot.wait(50)
    assert widget.stream is stream
    assert not {"b gaussian", "c gaussian"} & {layer.name for layer in viewer.layers}


def test_the_steps_as_started_run_on_every_layer_and_its_running_one_can_go(
    make_napari_viewer, qtbot, tmp_path, hold
):
    viewer = make_napari_viewer()
    data = _layers(viewer)
    widget = dock(viewer)
    _start(widget)
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=120_000)
    # Edits while the layers run do not change what the next ones compute...
    widget.steps.steps[0].fields["sigma"].value = 3.0
    # ...and a recipe waits until they are done.
    path = chunkwise.Recipe(ops.invert()).save(tmp_path / "r.json")
    widget.recipes.choose_file = lambda title, suggested, save: path
    widget.recipes.load_action.trigger()
    assert "still running" in widget.status.value
    assert widget.steps.steps[0].op_name.value == "gaussian"
    # Removing the layer being run cancels its run; the next ones go on.
    viewer.layers.remove("a")
    hold.set()
    _sequence_over(qtbot, widget)
    assert widget.sequence.outcomes == {
        "a": "failed: its layer was removed mid-run",
        "b": "done",
        "c": "done",
    }
    for name in "bc":
        np.testing.assert_array_equal(
            np.asarray(viewer.layers[f"{name} gaussian"].data[:]),
            ndimage.gaussian_filter(data[name], 1.5),
        )
    assert widget.status.value == "2 of 3 layers done; failed: a"


def test_with_an_output_chosen_each_layer_gets_a_store_beside_it(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer()
    data = _layers(viewer)
    viewer.layers.selection = {viewer.layers[name] for name in "ab"}
    widget = dock(viewer)
    widget.output.value = tmp_path / "chosen.zarr"
    _start(widget)
    _sequence_over(qtbot, widget)
    assert widget.sequence.outcomes == {"a": "done", "b": "done"}
    for name in "ab":
        written = zarr.open_array(tmp_path / f"{name}-gaussian.zarr", mode="r")
        np.testing.assert_array_equal(
            written[:], ndimage.gaussian_filter(data[name], 1.5)
        )
        assert written.chunks == (16, 16, 16)
    assert not (tmp_path / "chosen.zarr").exists()
    assert widget.output.value == tmp_path / "chosen.zarr"  # as the user left it
