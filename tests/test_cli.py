"""The chunkwise command: real runs on stores on disk, exit codes, listings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage

from chunkwise import ops
from chunkwise._sample import synthetic_ct
from chunkwise.cli import main


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = synthetic_ct((30, 40, 50), seed=1)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(16, 16, 16), zarr_format=2)
    return path, data


def test_run_chain_matches_reference(source, tmp_path, capsys):
    path, data = source
    out = tmp_path / "out.zarr"
    argv = [
        "run", str(path), str(out), "--op", "gaussian:sigma=1/2/2",
        "--op", "downsample:factor=2,method=mean", "-j", "2", "--zarr-format", "2",
        "--codec", "lz4", "--chunks", "8,8,8",
    ]  # fmt: skip
    assert main(argv) == 0
    result = zarr.open_array(out, mode="r")
    expected = ops.downsample(2)(ndimage.gaussian_filter(data, (1, 2, 2)))
    np.testing.assert_array_equal(result[:], expected)
    assert result.metadata.zarr_format == 2
    assert result.chunks == (8, 8, 8)
    assert result.attrs["chunkwise"]["status"] == "complete"
    assert f"wrote {out}" in capsys.readouterr().out


def test_progress_bar_shows_chunks_and_throughput(source, tmp_path, capsys):
    path, _ = source
    assert main(["run", str(path), str(tmp_path / "o.zarr"), "--op", "invert"]) == 0
    err = capsys.readouterr().err
    assert "chunk" in err and "MB/s" in err and "24/24" in err  # 2 x 3 x 4 chunks of 16


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ("gaussian:sigma=-1", "sigma"),
        ("downsample:factor=0", "factor"),
        ("clip:lo=5,hi=1", "lo"),
        ("blur:sigma=1", "unknown operation 'blur'"),
        ("gaussian:sigma", "malformed"),
        ("gaussian:sigma=1/1", "sigma has 2 values"),
    ],
)
def test_bad_operation_exits_2_with_one_line(source, tmp_path, capsys, op, message):
    path, _ = source
    out = tmp_path / "out.zarr"
    assert main(["run", str(path), str(out), "--op", op]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert not out.exists()


def test_existing_output_is_refused_then_overwritten(source, tmp_path, capsys):
    path, data = source
    out = tmp_path / "out.zarr"
    assert main(["run", str(path), str(out), "--op", "invert", "--quiet"]) == 0
    assert main(["run", str(path), str(out), "--op", "invert", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    argv = ["run", str(path), str(out), "--op", "clip:lo=10,hi=20", "--overwrite"]
    assert main([*argv, "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out)[:], np.clip(data, 10, 20))


def test_missing_input_and_output_inside_input_exit_2(source, tmp_path, capsys):
    path, _ = source
    assert (
        main(
            ["run", str(tmp_path / "nope.zarr"), str(tmp_path / "o"), "--op", "invert"]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert main(["run", str(path), str(path / "inside"), "--op", "invert"]) == 2
    assert "inside" in capsys.readouterr().err


def test_corrupt_chunk_exits_1_naming_the_chunk(source, tmp_path, capsys):
    path, _ = source
    (path / "1.1.1").write_bytes(b"not a blosc frame")
    out = tmp_path / "out.zarr"
    assert (
        main(["run", str(path), str(out), "--op", "gaussian:sigma=1", "--quiet"]) == 1
    )
    err = capsys.readouterr().err
    assert "(1, 1, 1)" in err and "block" in err
    assert zarr.open_array(out).attrs["chunkwise"]["status"] == "failed"


def test_ops_lists_every_operation_with_defaults(capsys):
    assert main(["ops"]) == 0
    listing = capsys.readouterr().out
    for name in ops.CATALOGUE:
        assert f"{name}:" in listing
    assert "sigma (float | tuple[float, ...]): default 1.0" in listing
    assert "method (str): default 'mean'" in listing


def test_info_shows_layout_and_provenance(source, tmp_path, capsys):
    path, _ = source
    out = tmp_path / "out.zarr"
    argv = ["run", str(path), str(out), "--op", "median:size=3", "--codec", "zstd:7"]
    assert main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "shape: (30, 40, 50)" in info
    assert "zarr format: 3" in info
    assert "ZstdCodec(level=7" in info
    assert "status: complete" in info
    assert '"op": "median"' in info
    assert str(path) in info


def test_sample_and_demo_write_data(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sample.zarr"
    assert main(["sample", str(out), "--shape", "16,32,32", "--chunks", "8,16,16"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out)[:], synthetic_ct((16, 32, 32)))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["demo", "--shape", "32,32,32"]) == 0
    written = Path(capsys.readouterr().out.split("wrote ")[-1].splitlines()[0])
    assert written.is_relative_to(tmp_path)
    sample = zarr.open_array(written.parent / "sample.zarr")[:]
    np.testing.assert_array_equal(
        zarr.open_array(written)[:], ndimage.gaussian_filter(sample, 2)
    )


def test_missing_chunk_reads_as_fill_unless_asked_to_fail(tmp_path, capsys):
    data = synthetic_ct((16, 16, 32), seed=2)
    data[:, :, :16] = 0  # equal to the fill value: zarr does not write that chunk
    path = tmp_path / "sparse.zarr"
    zarr.create_array(path, data=data, chunks=(16, 16, 16))
    assert not (path / "c" / "0" / "0" / "0").exists()
    out = tmp_path / "out.zarr"
    assert main(["run", str(path), str(out), "--op", "invert", "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out)[:], np.invert(data))
    argv = ["run", str(path), str(out), "--op", "invert", "--missing-chunks", "error"]
    assert main([*argv, "--overwrite", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "input chunk (0, 0, 0)" in err and "missing" in err


def test_python_dash_m_chunkwise_is_the_command(source, tmp_path):
    import subprocess
    import sys

    path, data = source
    out = tmp_path / "m.zarr"
    done = subprocess.run(
        [sys.executable, "-m", "chunkwise", "run", str(path), str(out),
         "--op", "median:size=3", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(
        zarr.open_array(out, mode="r")[:], ndimage.median_filter(data, 3)
    )
    bad = subprocess.run(
        [sys.executable, "-m", "chunkwise", "run", str(path), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
