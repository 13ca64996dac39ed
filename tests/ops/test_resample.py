"""Downsampling and upsampling against loop-over-windows and numpy/scipy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from chunkwise import ops
from conftest import (
    exact_settings,
    layouts,
    per_axis,
    processed,
    reference_downsample,
    spatial_axes,
    volumes,
)

FACTORS = st.integers(1, 4)


def _factor(data, ndim: int):
    n = len(spatial_axes(ndim))
    return data.draw(st.one_of(FACTORS, st.tuples(*[FACTORS] * n)))


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(max_side=16),
    method=st.sampled_from(ops.DOWNSAMPLE_METHODS),
)
def test_downsample_matches_window_reference(data, x, method):
    factor = _factor(data, x.ndim)
    op = ops.downsample(factor, method=method)
    expected = reference_downsample(x, factor, method)
    result = op(x)
    assert result.shape == expected.shape
    assert result.dtype == x.dtype
    if method == "mean" and x.dtype.kind == "f":
        # np.mean and chunkwise may add a float window in different orders.
        tolerance = 1e-5 if x.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=tolerance)
    else:
        np.testing.assert_array_equal(result, expected, strict=True)
    chunked = processed(x, op, data.draw(layouts(expected.shape)))
    np.testing.assert_array_equal(chunked, result, strict=True)


@exact_settings(40)
@given(data=st.data(), x=volumes(max_side=16), order=st.sampled_from([0, 1]))
def test_upsample_matches_repeat_and_zoom(data, x, order):
    factor = _factor(data, x.ndim)
    factors = per_axis(factor, x.ndim)
    op = ops.upsample(factor, order=order)
    result = op(x)
    assert result.dtype == x.dtype
    if order == 0:
        expected = x
        for axis, k in enumerate(factors):
            expected = np.repeat(expected, k, axis=axis)
        np.testing.assert_array_equal(result, expected, strict=True)
    else:
        expected = ndimage.zoom(x, factors, order=1, grid_mode=True, mode="nearest")
        assert result.shape == expected.shape
        if x.dtype.kind in "ui":
            difference = np.abs(result.astype(np.int64) - expected.astype(np.int64))
            assert difference.max() <= 1
        else:
            np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-4)
    chunked = processed(x, op, data.draw(layouts(result.shape)))
    np.testing.assert_array_equal(chunked, result, strict=True)


# Tiny hand-written cases; a (1, n) array with factor (1, k) is a line of windows.


def _line(values, dtype) -> np.ndarray:
    return np.array([values], dtype)


@pytest.mark.parametrize(
    ("method", "k", "values", "expected"),
    [
        # halves round to even: 1.5 -> 2, 2.5 -> 2, 5.5 -> 6; the last window is [7]
        ("mean", 2, [1, 2, 2, 3, 5, 6, 7], [2, 2, 6, 7]),
        ("mean", 3, [1, 2, 2, 9, 9], [2, 9]),
        ("median", 4, [1, 2, 3, 4, 10, 11, 13], [2, 11]),
        ("median", 4, [0, 1, 2, 3, 8, 6], [2, 7]),
        ("min", 2, [5, 3, 9, 8, 1], [3, 8, 1]),
        ("max", 2, [5, 3, 9, 8, 1], [5, 9, 1]),
        ("nearest", 3, [5, 3, 9, 8, 1], [5, 8]),
        # ties go to the smallest value, also in the partial window
        ("mode", 3, [1, 2, 2, 1, 3, 3, 0, 0, 7], [2, 3, 0]),
        ("mode", 4, [2, 1, 1, 2, 3, 0, 0, 3, 6, 5], [1, 0, 5]),
    ],
)
@pytest.mark.parametrize("dtype", ["uint8", "int16"])
def test_downsample_by_hand(method, k, values, expected, dtype):
    result = ops.downsample((1, k), method=method)(_line(values, dtype))
    np.testing.assert_array_equal(result, _line(expected, dtype), strict=True)


def test_downsample_rounds_negative_halves_to_even():
    x = _line([-1, -2, -2, -3, -3, -4], "int16")
    result = ops.downsample((1, 2))(x)
    np.testing.assert_array_equal(result, _line([-2, -2, -4], "int16"), strict=True)


def test_downsample_float_mean_is_not_rounded():
    x = _line([1, 2, 2, 4, 7], "float32")
    result = ops.downsample((1, 2))(x)
    np.testing.assert_array_equal(result, _line([1.5, 3, 7], "float32"), strict=True)


def test_downsample_partial_window_in_every_corner():
    x = np.arange(5 * 7, dtype=np.uint16).reshape(5, 7)
    result = ops.downsample(2, method="max")(x)
    assert result.shape == (3, 4)
    # The corner window is the single voxel x[4, 6].
    assert result[2, 3] == x[4, 6]
    np.testing.assert_array_equal(result[2], [*x[4, 1::2], x[4, 6]])
    mode = ops.downsample(2, method="mode")(np.array([[3, 1], [1, 3]], np.uint8))
    np.testing.assert_array_equal(mode, [[1]])


def test_downsample_keeps_leading_axes_of_4d():
    x = np.zeros((2, 5, 4, 7), np.uint8)
    assert ops.downsample(3)(x).shape == (2, 2, 2, 3)
    assert ops.upsample((1, 2, 3))(x).shape == (2, 5, 8, 21)


def test_upsample_by_hand():
    np.testing.assert_array_equal(
        ops.upsample(2)(np.array([[1, 2]], np.uint8)),
        np.array([[1, 1, 2, 2], [1, 1, 2, 2]], np.uint8),
        strict=True,
    )
    # Pixel centres: outputs sample the input at -0.25, 0.25, 0.75, 1.25.
    linear = ops.upsample((1, 2), order=1)
    np.testing.assert_array_equal(
        linear(_line([0, 4], "float32")), _line([0, 1, 3, 4], "float32"), strict=True
    )
    # 0.5 and 1.5 round half to even.
    np.testing.assert_array_equal(
        linear(_line([0, 2], "uint8")), _line([0, 0, 2, 2], "uint8"), strict=True
    )
