"""Kernel presets: correlating with them is scipy's own edge and mean filters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from chunkwise import ChunkwiseError, ops
from conftest import processed

#: Whole numbers in float64: sums of them are exact in any order, so a preset's
#: correlation equals scipy's separable filter bit for bit.
LAYOUTS = [((3, 5, 4), (3, 5, 4)), ((1, 1, 1), (1, 1, 1)), ((4, 2, 7), (8, 4, 7))]


@pytest.fixture
def integral() -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.integers(-50, 50, (9, 13, 10)).astype(np.float64)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "constant"])
def test_laplacian_preset_is_scipys_laplace(integral, layout, mode):
    op = ops.correlate(ops.kernel_preset("laplacian"), mode=mode)
    expected = ndimage.laplace(integral, mode=mode)
    np.testing.assert_array_equal(processed(integral, op, layout), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("name", "axis"), [("sobel-z", 0), ("sobel-y", 1), ("sobel-x", 2)]
)
def test_sobel_presets_are_scipys_sobel_along_their_axis(integral, layout, name, axis):
    op = ops.correlate(ops.kernel_preset(name), mode="mirror")
    expected = ndimage.sobel(integral, axis=axis, mode="mirror")
    np.testing.assert_array_equal(processed(integral, op, layout), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_line_and_mean_presets_average_their_window(integral, layout):
    # Fractions of 1/5 and 1/27: equal to scipy's uniform filters up to rounding.
    line = processed(integral, ops.correlate(ops.kernel_preset("line-y")), layout)
    np.testing.assert_allclose(
        line, ndimage.uniform_filter1d(integral, 5, axis=1), atol=1e-12
    )
    mean = processed(integral, ops.correlate(ops.kernel_preset("mean")), layout)
    np.testing.assert_allclose(mean, ndimage.uniform_filter(integral, 3), atol=1e-12)


def test_presets_fit_two_axes_and_refuse_what_they_cannot():
    np.testing.assert_array_equal(
        ops.kernel_preset("sobel-y", 2), np.outer([-1, 0, 1], [1, 2, 1])
    )
    assert ops.kernel_preset("line-x", 2).shape == (1, 5)
    with pytest.raises(ChunkwiseError, match="needs a z axis"):
        ops.kernel_preset("sobel-z", 2)
    with pytest.raises(ChunkwiseError, match="unknown kernel preset 'gauss'"):
        ops.kernel_preset("gauss")
