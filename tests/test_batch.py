"""Batch: one recipe over several real stores, one of them corrupt or interrupted.

Outputs are compared bit for bit with scipy.ndimage on the whole input; reruns are
checked by the modification times of every file of the finished outputs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._sample import write_synthetic_ct
from chunkwise.cli import main
from faults import (
    assert_one_line_error,
    chunk_files,
    cli_env,
    ledger_count,
    read_array,
    run_cli,
    start_cli,
    status_of,
    wait_for,
)

# The autouse fixture that kills what a test started and left running.
from faults import reap_started as reap_started

SHAPE = (32, 32, 48)
CHUNKS = (16, 16, 16)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, np.ndarray]:
    """``data/a.zarr``, ``b.zarr`` and ``c.zarr``: 12 chunks each, their data."""
    folder = tmp_path / "data"
    found = {}
    for seed, name in enumerate(("a", "b", "c")):
        path = folder / f"{name}.zarr"
        write_synthetic_ct(path, SHAPE, chunks=CHUNKS, seed=seed)
        found[name] = zarr.open_array(path, mode="r")[:]
    return found


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A median of 3 into 16**3 chunks, as a recipe file."""
    made = chunkwise.Recipe(operation=ops.median(3), chunks=CHUNKS, codec="zstd:2")
    return made.save(tmp_path / "median.json")


def _corrupt(path: Path) -> None:
    """Overwrite one chunk file of the input with bytes that do not decode."""
    chunk_files(path)[3].write_bytes(b"not a zstd frame" * 8)


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in sorted(folder.rglob("*"))
    }


def _table(out: str) -> dict[str, list[str]]:
    """The summary table: input -> its cells (status, time, error)."""
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["input", "status", "time", "error"], out
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[Path(cells[0]).stem] = cells[1:]
    return rows


def test_a_corrupt_input_fails_alone_and_a_rerun_skips_the_finished(
    inputs, recipe, tmp_path
):
    _corrupt(tmp_path / "data" / "b.zarr")
    results = tmp_path / "results"
    pattern = str(tmp_path / "data" / "*.zarr")
    first = run_cli("batch", recipe, pattern, "--out-dir", results, "-j", "2")
    assert first.code == 1, str(first)
    rows = _table(first.out)
    assert [rows[n][0] for n in "abc"] == ["done", "failed", "done"], first.out
    assert "b.zarr" in first.out and rows["b"][2], first.out  # the error, named
    assert "Traceback" not in first.err
    assert "1 of 3 inputs failed" in first.err
    for name in "ac":
        out = results / f"{name}.zarr"
        np.testing.assert_array_equal(
            read_array(out), ndimage.median_filter(inputs[name], 3)
        )
        assert zarr.open_array(out, mode="r").chunks == CHUNKS
    assert status_of(results / "b.zarr") == "failed"
    before = {n: _mtimes(results / f"{n}.zarr") for n in "ac"}

    second = run_cli("batch", recipe, pattern, "--out-dir", results, "--quiet")
    assert second.code == 1, str(second)
    rows = _table(second.out)
    assert [rows[n][0] for n in "abc"] == ["skipped", "failed", "skipped"]
    assert {n: _mtimes(results / f"{n}.zarr") for n in "ac"} == before


def test_an_input_killed_midway_is_resumed_by_the_next_batch(inputs, tmp_path):
    slow = chunkwise.Recipe(
        operation=ops.custom("tests.functions:slow_copy"), chunks=CHUNKS
    ).save(tmp_path / "slow.yaml")
    results = tmp_path / "results"
    names = [tmp_path / "data" / f"{n}.zarr" for n in "abc"]
    started = start_cli(
        "batch", slow, *names, "--out-dir", results, "-j", "1", "--block", "16,16,16",
        "--quiet", env=cli_env(CHUNKWISE_TEST_DELAY="0.15"),
    )  # fmt: skip
    wait_for(lambda: ledger_count(results / "b.zarr") >= 2, what="blocks of b")
    started.kill9()
    assert status_of(results / "a.zarr") == "complete"
    partial = ledger_count(results / "b.zarr")
    assert 2 <= partial < 12
    before = _mtimes(results / "a.zarr")

    rerun = run_cli(
        "batch", slow, *names, "--out-dir", results, "--quiet",
        env=cli_env(CHUNKWISE_TEST_DELAY="0"),
    )  # fmt: skip
    assert rerun.code == 0, str(rerun)
    rows = _table(rerun.out)
    assert [rows[n][0] for n in "abc"] == ["skipped", "resumed", "done"]
    assert _mtimes(results / "a.zarr") == before
    for name in "abc":
        np.testing.assert_array_equal(
            read_array(results / f"{name}.zarr"), inputs[name]
        )
        assert status_of(results / f"{name}.zarr") == "complete"


def test_an_output_made_otherwise_is_never_replaced_silently(inputs, recipe, tmp_path):
    results = tmp_path / "results"
    other = results / "a.zarr"
    chunkwise.process(tmp_path / "data" / "a.zarr", ops.invert(), other)
    untouched = _mtimes(other)
    done = chunkwise.batch(recipe, [tmp_path / "data" / "a.zarr"], results)
    assert [(r.status, r.input) for r in done] == [
        ("failed", str(tmp_path / "data" / "a.zarr"))
    ]
    assert "different operation" in done[0].error
    assert _mtimes(other) == untouched
    np.testing.assert_array_equal(read_array(other), ops.invert()(inputs["a"]))

    done = chunkwise.batch(
        recipe, [tmp_path / "data" / "a.zarr"], results, overwrite=True
    )
    assert [r.status for r in done] == ["done"]
    np.testing.assert_array_equal(
        read_array(other), ndimage.median_filter(inputs["a"], 3)
    )
    again = chunkwise.batch(
        recipe, [tmp_path / "data" / "a.zarr"], results, overwrite=True
    )
    assert [r.status for r in again] == ["skipped"]


def test_an_array_chunkwise_did_not_make_is_replaced_only_with_force(
    inputs, recipe, tmp_path, capsys
):
    results = tmp_path / "results"
    foreign = results / "a.zarr"
    zarr.create_array(foreign, shape=(4, 4), dtype=np.uint8)[:] = 7
    args = ["batch", str(recipe), str(tmp_path / "data" / "a.zarr")]
    args += ["--out-dir", str(results), "--quiet"]
    for extra in ([], ["--overwrite"]):
        assert main([*args, *extra]) == 1
        assert "not made by chunkwise" in capsys.readouterr().out
        np.testing.assert_array_equal(read_array(foreign), np.full((4, 4), 7))
    assert main([*args, "--overwrite", "--force"]) == 0
    assert _table(capsys.readouterr().out)["a"][0] == "done"
    np.testing.assert_array_equal(
        read_array(foreign), ndimage.median_filter(inputs["a"], 3)
    )


def test_a_changed_input_is_not_skipped(inputs, recipe, tmp_path):
    results = tmp_path / "results"
    source = tmp_path / "data" / "c.zarr"
    assert [r.status for r in chunkwise.batch(recipe, source, results)] == ["done"]
    changed = inputs["c"].copy()
    changed[:16, :16, :16] = 0
    zarr.open_array(source, mode="r+")[:16, :16, :16] = 0
    result = chunkwise.batch(recipe, source, results)[0]
    assert result.status == "failed"
    assert "input changed" in result.error
    result = chunkwise.batch(recipe, source, results, overwrite=True)[0]
    assert result.status == "done"
    np.testing.assert_array_equal(
        read_array(results / "c.zarr"), ndimage.median_filter(changed, 3)
    )


def test_the_python_api_a_region_recipe_and_the_table(inputs, tmp_path):
    region = chunkwise.Recipe(
        operation=chunkwise.chain(ops.gaussian(1), ops.downsample(2)),
        region="0:16,0:16,0:16",
        chunks=(8, 8, 8),
    )
    data = tmp_path / "data"
    given = [str(data / "a.zarr"), str(data / "[bc].zarr")]
    first = chunkwise.batch(region, given, tmp_path / "out", n_jobs=2)
    assert [(Path(r.input).name, r.status) for r in first] == [
        ("a.zarr", "done"), ("b.zarr", "done"), ("c.zarr", "done"),
    ]  # fmt: skip
    assert all(r.seconds > 0 and r.error is None for r in first)
    for result in first:
        name = Path(result.input).stem
        array = zarr.open_array(result.output, mode="r")
        assert array.attrs["chunkwise"]["status"] == "partial"
        expected = ops.downsample(2)(ndimage.gaussian_filter(inputs[name], 1))
        np.testing.assert_array_equal(array[:8, :8, :8], expected[:8, :8, :8])
    again = chunkwise.batch(region, given, tmp_path / "out")
    assert [r.status for r in again] == ["skipped"] * 3
    table = chunkwise.summary_table(again).splitlines()
    assert table[0].split() == ["input", "status", "time", "error"]
    assert len(table) == 4 and all("skipped" in line for line in table[1:])
    # Without the region, the same recipe finishes them.
    whole = chunkwise.batch(region, given, tmp_path / "out", region=None)
    assert [r.status for r in whole] == ["resumed"] * 3
    for result in whole:
        name = Path(result.input).stem
        np.testing.assert_array_equal(
            read_array(result.output),
            ops.downsample(2)(ndimage.gaussian_filter(inputs[name], 1)),
        )


def test_bad_batches_are_refused_before_anything_runs(inputs, recipe, tmp_path, capsys):
    results = tmp_path / "results"
    cases = [
        ([str(recipe), str(tmp_path / "none" / "*.zarr")], "no input matches"),
        ([str(recipe), str(tmp_path / "data" / "a.zarr"),
          str(tmp_path / "x" / "a.zarr")], "would both write"),
        ([str(recipe), str(tmp_path / "data" / "*.zarr"), "--codec", "zip"], "codec"),
        ([str(tmp_path / "nothing.json"), str(tmp_path / "data" / "a.zarr")],
         "no such recipe file"),
    ]  # fmt: skip
    (tmp_path / "x" / "a.zarr").mkdir(parents=True)
    for argv, needle in cases:
        assert main(["batch", *argv, "--out-dir", str(results)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not results.exists()
    with pytest.raises(chunkwise.ChunkwiseError, match="its own output"):
        chunkwise.batch(recipe, tmp_path / "data" / "a.zarr", tmp_path / "data")


def test_missing_inputs_and_metadata_fail_their_rows_and_the_batch_goes_on(
    inputs, recipe, tmp_path
):
    data = tmp_path / "data"
    (data / "b.zarr" / "zarr.json").unlink()  # an input without its metadata
    results = data / "results"  # in the folder that the pattern lists
    given = [data / "gone.zarr", data / "*"]
    done = chunkwise.batch(recipe, given, results)
    assert [(Path(r.input).name, r.status) for r in done] == [
        ("gone.zarr", "failed"), ("a.zarr", "done"), ("b.zarr", "failed"),
        ("c.zarr", "done"),
    ]  # fmt: skip
    assert "gone.zarr" in done[0].error
    assert "b.zarr" in done[2].error and "Zarr" in done[2].error
    # The results folder, now matched by data/*, is not taken for an input.
    again = chunkwise.batch(recipe, given, results)
    assert [r.status for r in again] == ["failed", "skipped", "failed", "skipped"]
    np.testing.assert_array_equal(
        read_array(results / "c.zarr"), ndimage.median_filter(inputs["c"], 3)
    )


@pytest.mark.filterwarnings(
    "ignore::ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
    "ignore:Port 8787 is already in use:UserWarning",
)
def test_a_batch_on_a_local_dask_cluster(inputs, recipe, tmp_path):
    distributed = pytest.importorskip("distributed")
    _corrupt(tmp_path / "data" / "b.zarr")
    results = tmp_path / "results"
    pattern = str(tmp_path / "data" / "*.zarr")
    argv = ("batch", recipe, pattern, "--out-dir", results, "--backend", "dask")
    first = run_cli(*argv, "--scheduler", "local", "-j", "2", "--quiet")
    assert first.code == 1, str(first)
    rows = _table(first.out)
    assert [rows[n][0] for n in "abc"] == ["done", "failed", "done"], first.out
    for name in "ac":
        np.testing.assert_array_equal(
            read_array(results / f"{name}.zarr"), ndimage.median_filter(inputs[name], 3)
        )
    before = {n: _mtimes(results / f"{n}.zarr") for n in "ac"}
    write_synthetic_ct(tmp_path / "data" / "d.zarr", SHAPE, chunks=CHUNKS, seed=9)
    fresh = zarr.open_array(tmp_path / "data" / "d.zarr", mode="r")[:]
    # On a cluster the caller runs (as tests/test_dask.py makes them).
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        again = chunkwise.batch(
            recipe, pattern, results, backend="dask", scheduler=client
        )
    assert [r.status for r in again] == ["skipped", "failed", "skipped", "done"]
    assert {n: _mtimes(results / f"{n}.zarr") for n in "ac"} == before
    np.testing.assert_array_equal(
        read_array(results / "d.zarr"), ndimage.median_filter(fresh, 3)
    )


def test_batch_options_override_the_recipe(inputs, recipe, tmp_path, capsys):
    results = tmp_path / "results"
    source = str(tmp_path / "data" / "a.zarr")
    argv = ["batch", str(recipe), source, "--out-dir", str(results), "--quiet"]
    assert main([*argv, "--chunks", "8,8,8", "--codec", "lz4"]) == 0
    array = zarr.open_array(results / "a.zarr", mode="r")
    np.testing.assert_array_equal(array[:], ndimage.median_filter(inputs["a"], 3))
    assert array.chunks == (8, 8, 8)
    assert array.compressors[0].to_dict()["configuration"]["cname"] == "lz4"
    assert _table(capsys.readouterr().out)["a"][0] == "done"
    # --op replaces the operations; the recipe's own layout stays.
    assert main([*argv[:4], str(tmp_path / "inverted"), "--op", "invert"]) == 0
    array = zarr.open_array(tmp_path / "inverted" / "a.zarr", mode="r")
    np.testing.assert_array_equal(array[:], 255 - inputs["a"])
    assert array.chunks == CHUNKS


def test_a_cancelled_batch_stops_and_the_next_one_resumes(inputs, recipe, tmp_path):
    token = chunkwise.CancelToken()
    results = tmp_path / "results"
    pattern = tmp_path / "data" / "*.zarr"

    def cancel_at_second(index: int, source: str, out: str) -> None:
        if index == 1:
            token.cancel()

    seen = []
    runs = chunkwise.iter_batch(
        recipe, pattern, results, cancel=token, on_start=cancel_at_second
    )
    with pytest.raises(chunkwise.Cancelled):
        for result in runs:
            seen.append(result.status)
    assert seen == ["done"]  # the batch stopped at the second input
    assert status_of(results / "b.zarr") == "cancelled"
    assert not (results / "c.zarr").exists()
    again = chunkwise.batch(recipe, pattern, results)
    assert [r.status for r in again] == ["skipped", "resumed", "done"]
    for name in "abc":
        np.testing.assert_array_equal(
            read_array(results / f"{name}.zarr"), ndimage.median_filter(inputs[name], 3)
        )


def test_ctrl_c_stops_a_batch_that_a_rerun_finishes(inputs, tmp_path):
    slow = chunkwise.Recipe(
        operation=ops.custom("tests.functions:slow_copy"), chunks=CHUNKS
    ).save(tmp_path / "slow.json")
    results = tmp_path / "results"
    argv = ("batch", slow, tmp_path / "data" / "*.zarr", "--out-dir", results)
    started = start_cli(
        *argv, "-j", "1", "--block", "16,16,16", "--quiet",
        env=cli_env(CHUNKWISE_TEST_DELAY="0.15"),
    )  # fmt: skip
    wait_for(
        lambda: (
            status_of(results / "a.zarr") == "complete"
            and ledger_count(results / "b.zarr") >= 1
        ),
        what="a done and a first block of b",
    )
    os.kill(started.pid, signal.SIGINT)
    stopped = started.finish()
    assert stopped.code == 130, str(stopped)
    assert "run the batch again to resume it" in stopped.err
    assert "Traceback" not in stopped.err
    assert status_of(results / "b.zarr") == "cancelled"
    # The table says what was done before the stop; c never started.
    table = _table(stopped.out)
    assert {n: table[n][0] for n in table} == {"a": "done", "b": "cancelled"}
    rerun = run_cli(*argv, "--quiet", env=cli_env(CHUNKWISE_TEST_DELAY="0"))
    assert rerun.code == 0, str(rerun)
    assert [_table(rerun.out)[n][0] for n in "abc"] == ["skipped", "resumed", "done"]
    for name in "abc":
        np.testing.assert_array_equal(
            read_array(results / f"{name}.zarr"), inputs[name]
        )


def test_a_cluster_that_cannot_be_reached_stops_the_batch_in_one_line(
    inputs, recipe, tmp_path
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = tmp_path / "results"
    result = run_cli(
        "batch", recipe, tmp_path / "data" / "*.zarr", "--out-dir", results,
        "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{port}", "--quiet",
        env=cli_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s"),
    )  # fmt: skip
    assert result.code == 2, str(result)
    assert_one_line_error(
        result, f"cannot reach the dask scheduler at tcp://127.0.0.1:{port}"
    )
    assert list(results.iterdir()) == []  # tried once, nothing written
