"""Kill a real run with SIGKILL or SIGINT at any moment, then resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._sample import synthetic_ct

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (48, 64, 64)
BLOCK = "8,8,8"
TOTAL_BLOCKS = 6 * 8 * 8
OP = "custom:function=tests.functions:slow_gaussian,halo=4"


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = synthetic_ct(SHAPE, seed=3)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(16, 16, 16))
    return path, data


def _command(source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "chunkwise.cli", "run", str(source), str(out),
        "--op", OP, "-j", "2", "--chunks", BLOCK, "--block", BLOCK, "--quiet", *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT), "CHUNKWISE_TEST_DELAY": "0.03"}


def _ledger(out: Path) -> int:
    folder = out / "chunkwise-ledger"
    # zarr writes each key through a temporary ".partial" file: count finished keys.
    return sum(name.isdigit() for name in os.listdir(folder)) if folder.exists() else 0


def _start_and_stop(source: Path, out: Path, after: int, sig: int, *extra: str) -> int:
    """Start a run, send ``sig`` once ``after`` blocks are recorded; return its code."""
    process = subprocess.Popen(_command(source, out, *extra), env=_env())
    deadline = time.monotonic() + 120
    while _ledger(out) < after and process.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.005)
    process.send_signal(sig)
    return process.wait(timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("kills", [(1,), (40, 150)])
def test_sigkill_then_resume_equals_uninterrupted(volume, tmp_path, kills):
    source, data = volume
    out = tmp_path / "out.zarr"
    for i, after in enumerate(kills):
        extra = ("--resume",) if i else ()
        code = _start_and_stop(source, out, after, signal.SIGKILL, *extra)
        assert code == -signal.SIGKILL
        done = _ledger(out)
        assert 0 < done < TOTAL_BLOCKS, "the kill must land mid-run"
        status = zarr.open_array(out, mode="r").attrs["chunkwise"]["status"]
        assert status == "running"  # killed: nobody could mark it

    run = chunkwise.iter_process(
        source,
        chunkwise.ops.parse(OP),
        out,
        n_jobs=2,
        chunks=(8, 8, 8),
        block=(8, 8, 8),
        resume=True,
    )
    assert run.done_at_start == done
    recomputed = sum(1 for _ in run)
    assert recomputed == TOTAL_BLOCKS - done

    result = zarr.open_array(out, mode="r")
    assert result.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1.0))
    uninterrupted = chunkwise.process(
        source, chunkwise.ops.parse(OP), n_jobs=2, chunks=(8, 8, 8), block=(8, 8, 8)
    )
    np.testing.assert_array_equal(result[:], uninterrupted[:])


@pytest.mark.slow
def test_ctrl_c_exits_130_marks_cancelled_and_resumes(volume, tmp_path):
    source, data = volume
    out = tmp_path / "out.zarr"
    code = _start_and_stop(source, out, 10, signal.SIGINT)
    assert code == 130
    record = zarr.open_array(out, mode="r").attrs["chunkwise"]
    assert record["status"] == "cancelled"
    assert _ledger(out) < TOTAL_BLOCKS

    finished = subprocess.run(
        _command(source, out, "--resume"), env=_env(), check=False
    )
    assert finished.returncode == 0
    result = zarr.open_array(out, mode="r")
    assert result.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1.0))


def test_resume_with_other_job_count_and_defaults_reuses_the_layout(volume, tmp_path):
    source, data = volume
    out = tmp_path / "out.zarr"
    op = chunkwise.ops.gaussian(1.5)
    layout = {"chunks": (8, 8, 8), "block": (8, 8, 8), "codec": "lz4"}
    run = chunkwise.iter_process(source, op, out, n_jobs=2, zarr_format=2, **layout)
    with pytest.raises(chunkwise.Cancelled):
        for record in run:
            if record.done == 3:
                run.cancel()
    first_blocks = run.plan.block_shape
    assert zarr.open_array(out).attrs["chunkwise"]["status"] == "cancelled"

    # Left out, the layout, codec and format come from the output being finished.
    resumed = chunkwise.iter_process(source, op, out, n_jobs=1, resume=True)
    assert resumed.plan.block_shape == first_blocks
    assert resumed.done_at_start >= 3
    list(resumed)
    result = zarr.open_array(out, mode="r")
    assert result.metadata.zarr_format == 2
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1.5))


def test_a_directory_that_is_not_zarr_is_never_replaced(volume, tmp_path):
    source, _ = volume
    folder = tmp_path / "my-notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(chunkwise.ChunkwiseError, match="not a Zarr array"):
            chunkwise.process(
                source, chunkwise.ops.invert(), folder, overwrite=overwrite
            )
    assert (folder / "notes.txt").read_text() == "precious"


#: Records that outputs written before the issue-12 parameters (radius, order,
#: dtype, footprint, origin, custom's mode, downsampling conventions) hold. Resume
#: compares records, so the same operations must still give exactly these.
EARLIER_RECORDS = [
    (
        ops.gaussian(1.5),
        {
            "op": "gaussian",
            "mode": "reflect",
            "cval": 0.0,
            "truncate": 4.0,
            "sigma": 1.5,
        },
    ),
    (
        ops.gradient_magnitude(2.0, mode="nearest"),
        {
            "op": "gradient_magnitude",
            "mode": "nearest",
            "cval": 0.0,
            "truncate": 4.0,
            "sigma": 2.0,
        },
    ),
    (ops.median(5), {"op": "median", "mode": "reflect", "cval": 0.0, "size": 5}),
    (ops.maximum(3), {"op": "maximum", "mode": "reflect", "cval": 0.0, "size": 3}),
    (ops.downsample(2), {"op": "downsample", "factor": 2, "method": "mean"}),
    (
        ops.custom("numpy:copy", halo=1),
        {"op": "custom", "function": "numpy:copy", "halo": 1, "dtype": None},
    ),
]


@pytest.mark.parametrize(("op", "record"), EARLIER_RECORDS)
def test_operations_at_their_defaults_keep_the_records_of_earlier_runs(op, record):
    assert op.to_dict() == record
    assert ops.from_dict(record) == op
