"""The real synchrotron CT heart (Human Organ Atlas), when ../shared is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops

HEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "hoa_heart.zarr"

pytestmark = pytest.mark.skipif(
    not HEART.exists(), reason=f"the shared heart scan is absent ({HEART})"
)


@pytest.fixture(scope="module")
def heart() -> np.ndarray:
    return zarr.open_array(HEART, mode="r")[:]


def _mean_downsample_2(volume: np.ndarray) -> np.ndarray:
    """Windows of 2 per axis, the last one partial where the size is odd."""
    sums = volume.astype(np.int64)
    counts = np.ones(volume.shape, np.int64)
    for axis, n in enumerate(volume.shape):
        starts = np.arange(0, n, 2)
        sums = np.add.reduceat(sums, starts, axis=axis)
        counts = np.add.reduceat(counts, starts, axis=axis)
    return np.rint(sums / counts).astype(volume.dtype)


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (ops.gaussian(2), lambda v: ndimage.gaussian_filter(v, 2)),
        (ops.median(3), lambda v: ndimage.median_filter(v, 3)),
        (ops.downsample(2, method="mean"), _mean_downsample_2),
    ],
    ids=["gaussian-2", "median-3", "downsample-2-mean"],
)
def test_heart_is_bit_identical_to_whole_array(heart, tmp_path, op, reference):
    result = chunkwise.process(HEART, op, tmp_path / "out.zarr", n_jobs=2)
    expected = reference(heart)
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result[:], expected)
    # The input was opened read-only and still holds the scan.
    np.testing.assert_array_equal(zarr.open_array(HEART, mode="r")[:], heart)
