"""Before a run: which outputs it can resume, and how much it will write."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import chunkwise
from chunkwise import Status, ops


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 200, (32, 32, 32), dtype=np.uint8)


def _cancelled(volume, op, out) -> None:
    run = chunkwise.iter_process(volume, op, out, chunks=(16, 16, 16), n_jobs=1)
    next(run)
    run.cancel()
    with pytest.raises(chunkwise.Cancelled):
        for _ in run:
            pass


def test_a_cancelled_run_is_resumable_by_its_input_and_operation_only(tmp_path, volume):
    out = tmp_path / "out.zarr"
    _cancelled(volume, ops.gaussian(1.0), out)
    assert chunkwise.resumable(out, volume, ops.gaussian(1.0)) is Status.CANCELLED
    assert chunkwise.resumable(out, volume, ops.gaussian(2.0)) is None
    assert chunkwise.resumable(out, volume[:16], ops.gaussian(1.0)) is None
    assert chunkwise.resumable(tmp_path / "none.zarr", volume, ops.invert()) is None
    # Once finished, there is nothing to resume.
    chunkwise.process(volume, ops.gaussian(1.0), out, resume=True)
    assert chunkwise.output_status(out) is Status.COMPLETE
    assert chunkwise.resumable(out, volume, ops.gaussian(1.0)) is None


def test_a_zarr_input_is_recognised_by_its_location(tmp_path, volume):
    source = tmp_path / "in.zarr"
    zarr.create_array(source, shape=volume.shape, chunks=(16, 16, 16), dtype="u1")[
        ...
    ] = volume
    out = tmp_path / "out.zarr"
    _cancelled(str(source), ops.invert(), out)
    assert chunkwise.resumable(out, str(source), ops.invert()) is Status.CANCELLED
    assert chunkwise.resumable(out, volume, ops.invert()) is None  # another input


def test_a_foreign_array_is_not_resumable(tmp_path, volume):
    out = tmp_path / "plain.zarr"
    zarr.create_array(out, shape=(4, 4), dtype="u1")
    assert chunkwise.resumable(out, volume, ops.invert()) is None


def test_the_estimate_is_the_output_size_and_what_the_space_check_uses(tmp_path):
    # Mostly empty: its chunks compress far better than 1:1.
    sparse = np.zeros((64, 64, 64), np.uint16)
    sparse[:8] = 7
    source = tmp_path / "sparse.zarr"
    zarr.create_array(source, shape=sparse.shape, chunks=(32, 32, 32), dtype="u2")[
        ...
    ] = sparse
    estimate = chunkwise.estimate_output(str(source), ops.downsample(2))
    assert estimate.uncompressed == 32 * 32 * 32 * 2
    assert 0 < estimate.stored < estimate.uncompressed
    estimate = chunkwise.estimate_output(np.zeros((8, 8, 8), "f4"), ops.gaussian(1))
    assert estimate == chunkwise.SizeEstimate(8 * 8 * 8 * 4, 8 * 8 * 8 * 4)
