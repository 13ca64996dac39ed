"""Pointwise operations against numpy called directly, and by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import chunkwise
from chunkwise import ops
from conftest import DTYPES, exact_settings, layouts, processed, volumes

NAN, INF = np.nan, np.inf


def _assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(actual, expected, strict=True)


def _to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """Round half to even and clip into an integer dtype, in float64 (no NaN)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    rounded = np.rint(values.astype(np.float64))
    return np.clip(rounded, info.min, info.max).astype(dtype)


def _check(x: np.ndarray, op, expected: np.ndarray, data) -> None:
    _assert_identical(op(x), expected)
    _assert_identical(processed(x, op, data.draw(layouts(x.shape))), expected)


@st.composite
def special_volumes(draw):
    """Volumes whose float values include NaN, infinities and halves."""
    x = draw(volumes(min_side=2))
    if x.dtype.kind == "f":
        specials = np.array([NAN, INF, -INF, 0.5, 1.5, 2.5, -0.5, -2.5, 254.5])
        where = draw(st.lists(st.integers(0, x.size - 1), max_size=10))
        flat = x.reshape(-1)
        flat[where] = specials[np.arange(len(where)) % len(specials)]
    return x


@exact_settings(30)
@given(data=st.data(), x=volumes(), lo=st.floats(-4e4, 7e4), width=st.floats(0, 7e4))
def test_clip_matches_numpy(data, x, lo, width):
    hi = lo + width
    if x.dtype.kind == "f":
        expected = np.clip(x, lo, hi)
    else:
        # Integer data: bounds round inwards, then into the dtype's range.
        assume(math.ceil(lo) <= math.floor(hi))
        info = np.iinfo(x.dtype)
        wide = np.clip(x.astype(np.int64), math.ceil(lo), math.floor(hi))
        expected = np.clip(wide, info.min, info.max).astype(x.dtype)
    _check(x, ops.clip(lo, hi), expected, data)


@exact_settings(30)
@given(data=st.data(), x=volumes(), value=st.floats(-200, 7e4))
def test_threshold_matches_numpy_and_is_uint8(data, x, value):
    if data.draw(st.booleans()):
        value = float(x.flat[data.draw(st.integers(0, x.size - 1))])  # ties
    _check(x, ops.threshold(value), (x > value).astype(np.uint8), data)


@exact_settings(20)
@given(data=st.data(), x=volumes())
def test_invert_matches_numpy(data, x):
    if x.dtype.kind == "u":
        expected = (np.iinfo(x.dtype).max - x.astype(np.int64)).astype(x.dtype)
    elif x.dtype.kind == "i":
        expected = (-1 - x.astype(np.int64)).astype(x.dtype)
    else:
        expected = -x
    _check(x, ops.invert(), expected, data)


@exact_settings(40)
@given(data=st.data(), x=special_volumes(), dtype=st.sampled_from(DTYPES))
def test_astype_rounds_half_to_even_and_clips(data, x, dtype):
    if np.dtype(dtype).kind in "ui" and np.isnan(x).any():
        # NaN has no integer value: refused on both paths, never a silent 0.
        with pytest.raises(chunkwise.BlockError, match="NaN"):
            ops.astype(dtype)(x)
        with pytest.raises(chunkwise.BlockError, match="NaN"):
            processed(x, ops.astype(dtype), data.draw(layouts(x.shape)))
        x = np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=-np.inf)
    _check(x, ops.astype(dtype), _to_dtype(x, dtype), data)


@exact_settings(30)
@given(
    data=st.data(),
    x=volumes(),
    in_lo=st.floats(-100, 100),
    in_width=st.floats(1e-3, 7e4),
    out_range=st.one_of(st.none(), st.tuples(st.floats(-300, 0), st.floats(1, 300))),
    dtype=st.one_of(st.none(), st.sampled_from(DTYPES)),
)
def test_rescale_is_linear_then_rounded(data, x, in_lo, in_width, out_range, dtype):
    in_hi = in_lo + in_width
    op = ops.rescale((in_lo, in_hi), out_range, dtype)
    target = np.dtype(dtype or x.dtype)
    if out_range is None:
        out_range = (0.0, 1.0)
        if target.kind in "ui":
            out_range = (np.iinfo(target).min, np.iinfo(target).max)
    out_lo, out_hi = out_range
    fraction = (np.clip(x.astype(np.float64), in_lo, in_hi) - in_lo) / (in_hi - in_lo)
    expected = _to_dtype(out_lo + fraction * (out_hi - out_lo), target)
    result = op(x)
    assert result.dtype == target
    # The order of the float64 operations may move a value by an ulp, and so flip
    # the rounding of an exact half.
    tolerance = {"atol": 1} if target.kind in "ui" else {"rtol": 1e-6, "atol": 1e-4}
    np.testing.assert_allclose(result, expected, **tolerance)
    _assert_identical(processed(x, op, data.draw(layouts(x.shape))), result)


@exact_settings(20)
@given(
    data=st.data(),
    x=volumes(),
    gamma=st.floats(0.1, 3),
    gain=st.sampled_from([1.0, 0.5, 2.0]),
)
def test_gamma_matches_skimage_formula(data, x, gamma, gain):
    op = ops.gamma(gamma, gain)
    scale = np.iinfo(x.dtype).max if x.dtype.kind in "ui" else 1.0
    values = np.maximum(x.astype(np.float64), 0) / scale
    expected = _to_dtype(values**gamma * gain * scale, x.dtype)
    result = op(x)
    tolerance = {"atol": 1} if x.dtype.kind in "ui" else {"rtol": 1e-6}
    np.testing.assert_allclose(result, expected, **tolerance)
    _assert_identical(processed(x, op, data.draw(layouts(x.shape))), result)


# Tiny hand-written cases.


def test_astype_by_hand():
    floats = np.array([[-3.0, 2.5, 3.5, 300.0, INF, -INF, 0.5, 1.5, -0.5]])
    _assert_identical(
        ops.astype("uint8")(floats),
        np.array([[0, 2, 4, 255, 255, 0, 0, 2, 0]], np.uint8),
    )
    with pytest.raises(chunkwise.BlockError, match=r"astype to uint8: .* NaN"):
        ops.astype("uint8")(np.array([[1.0, NAN]]))
    _assert_identical(
        ops.astype("int16")(np.array([[-40000.5, -2.5, 40000.0]])),
        np.array([[-32768, -2, 32767]], np.int16),
    )
    _assert_identical(
        ops.astype("int16")(np.array([[0, 40000, 32767, 65535]], np.uint16)),
        np.array([[0, 32767, 32767, 32767]], np.int16),
    )
    _assert_identical(
        ops.astype("uint16")(np.array([[-1, 5, -32768]], np.int16)),
        np.array([[0, 5, 0]], np.uint16),
    )
    _assert_identical(
        ops.astype("float32")(np.array([[65535, 1]], np.uint16)),
        np.array([[65535.0, 1.0]], np.float32),
    )
    _assert_identical(
        ops.astype("bool")(np.array([[0.0, -0.0, NAN, -1.0]])),
        np.array([[False, False, True, True]]),
    )


@pytest.mark.parametrize(
    ("dtype", "lo", "hi", "expected"),
    [
        ("uint8", 2.5, 7.5, [3, 3, 3, 3, 4, 5, 6, 7, 7, 7, 7]),
        ("uint8", -10.5, 300.7, list(range(11))),
        ("uint8", -5, -1, [0] * 11),
        ("uint8", 300, 400, [255] * 11),
        ("int16", -0.5, 3.0, [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]),
        ("uint16", 2.0, 2.0, [2] * 11),
    ],
)
def test_clip_with_float_bounds_on_integers(dtype, lo, hi, expected):
    x = np.arange(11, dtype=dtype).reshape(1, 11)
    _assert_identical(ops.clip(lo, hi)(x), np.array([expected], dtype))


def test_clip_keeps_float_dtype():
    x = np.array([[-1.0, 0.25, 2.0, NAN]], np.float32)
    _assert_identical(ops.clip(0, 1)(x), np.array([[0.0, 0.25, 1.0, NAN]], np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_is_strict_and_uint8(dtype):
    x = np.array([[0, 1, 2, 3]], dtype)
    result = ops.threshold(2)(x)
    _assert_identical(result, np.array([[0, 0, 0, 1]], np.uint8))
    _assert_identical(ops.threshold(1.5)(x), np.array([[0, 0, 1, 1]], np.uint8))
    _assert_identical(ops.threshold(-1)(x), np.ones((1, 4), np.uint8))
    assert ops.threshold(2).output_dtype(np.dtype(dtype)) == np.uint8
    chunked = processed(x, ops.threshold(2), ((1, 3), (1, 3)))
    _assert_identical(chunked, np.array([[0, 0, 0, 1]], np.uint8))


def test_threshold_of_nan_is_0():
    x = np.array([[NAN, INF, -INF]])
    _assert_identical(ops.threshold(0)(x), np.array([[0, 1, 0]], np.uint8))


def test_invert_by_hand():
    _assert_identical(
        ops.invert()(np.array([[0, 200, 255]], np.uint8)),
        np.array([[255, 55, 0]], np.uint8),
    )
    _assert_identical(
        ops.invert()(np.array([[0, -1, 32767, -32768]], np.int16)),
        np.array([[-1, 0, -32768, 32767]], np.int16),
    )
    _assert_identical(
        ops.invert()(np.array([[1.5, 0.0]], np.float32)),
        np.array([[-1.5, -0.0]], np.float32),
    )


def test_rescale_rounds_half_to_even():
    x = np.array([[0, 500, 2000, 1000]], np.uint16)
    # 500 maps to exactly 127.5.
    _assert_identical(
        ops.rescale((0, 1000), dtype="uint8")(x),
        np.array([[0, 128, 255, 255]], np.uint8),
    )
    _assert_identical(
        ops.rescale((0, 4), (0, 2), dtype="int16")(np.array([[1, 3, 5]], np.uint8)),
        np.array([[0, 2, 2]], np.int16),
    )
