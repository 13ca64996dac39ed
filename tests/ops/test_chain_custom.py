"""Chains and custom functions against the same steps composed with scipy/numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from chunkwise import chain, ops
from conftest import (
    exact_settings,
    layouts,
    per_axis,
    processed,
    reference_downsample,
    spatial_axes,
    volumes,
)


def _axes(ndim: int) -> dict:
    return {"axes": spatial_axes(ndim)} if ndim == 4 else {}


def _gaussian(draw):
    sigma = draw(st.floats(0, 2.5))
    mode = draw(st.sampled_from(ops.MODES))
    return ops.gaussian(sigma, mode=mode), lambda v: ndimage.gaussian_filter(
        v, sigma, mode=mode, **_axes(v.ndim)
    )


def _size_filter(draw):
    name = draw(st.sampled_from(["median", "minimum", "maximum"]))
    size = draw(st.integers(1, 4))
    mode = draw(st.sampled_from(ops.MODES))
    scipy_filter = getattr(ndimage, f"{name}_filter")
    return getattr(ops, name)(size, mode=mode), lambda v: scipy_filter(
        v, size, mode=mode, **_axes(v.ndim)
    )


def _downsample(draw):
    factor = draw(st.integers(1, 3))
    # The float mean's last bit depends on the order of the sum (test_resample).
    method = draw(st.sampled_from(["min", "max", "median", "mode", "nearest"]))
    return ops.downsample(factor, method=method), lambda v: reference_downsample(
        v, factor, method
    )


def _upsample(draw):
    factor = draw(st.integers(1, 2))

    def repeat(v):
        for axis, k in enumerate(per_axis(factor, v.ndim)):
            v = np.repeat(v, k, axis=axis)
        return v

    return ops.upsample(factor), repeat


def _threshold(draw):
    value = draw(st.floats(-50, 50))
    return ops.threshold(value), lambda v: (v > value).astype(np.uint8)


STEPS = [_gaussian, _size_filter, _downsample, _upsample, _threshold]


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(max_side=16),
    makers=st.lists(st.sampled_from(STEPS), min_size=1, max_size=3),
)
def test_chain_equals_composed_references(data, x, makers):
    steps = [maker(data.draw) for maker in makers]
    op = chain(*(step for step, _ in steps))
    expected = x
    for _, reference in steps:
        expected = reference(expected)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    chunked = processed(x, op, data.draw(layouts(expected.shape)))
    np.testing.assert_array_equal(chunked, expected, strict=True)


@exact_settings(20)
@given(data=st.data(), x=volumes(max_side=16, dtypes=("uint8", "int16")))
def test_chain_with_integer_mean_downsample(data, x):
    # A mean over windows of an integer filter output: exact, including halves.
    factor = data.draw(st.integers(2, 3))
    op = chain(ops.median(3), ops.downsample(factor), ops.maximum(2))
    filtered = ndimage.median_filter(x, 3, **_axes(x.ndim))
    expected = ndimage.maximum_filter(
        reference_downsample(filtered, factor, "mean"), 2, **_axes(x.ndim)
    )
    np.testing.assert_array_equal(op(x), expected, strict=True)
    chunked = processed(x, op, data.draw(layouts(expected.shape)))
    np.testing.assert_array_equal(chunked, expected, strict=True)


def test_chain_flattens_and_rejects_non_operations():
    inner = chain(ops.gaussian(1), ops.downsample(2))
    outer = chain(inner, ops.threshold(3))
    assert outer.steps == (ops.gaussian(1), ops.downsample(2), ops.threshold(3))
    with pytest.raises(ValueError, match="at least one"):
        chain()
    with pytest.raises(ValueError, match="takes operations"):
        chain(ops.gaussian(1), "median")


def test_chain_of_halos_wider_than_chunks():
    # Two filters and a downsample: the halos add up to 2 * 12 + 2 input voxels.
    x = np.random.default_rng(6).integers(0, 256, (21, 17, 19), dtype=np.uint8)
    op = chain(ops.gaussian(3), ops.downsample(2, method="median"), ops.gaussian(3))
    once = ndimage.gaussian_filter(x, 3)
    expected = ndimage.gaussian_filter(reference_downsample(once, 2, "median"), 3)
    np.testing.assert_array_equal(
        processed(x, op, ((3, 4, 3), (6, 4, 3))), expected, strict=True
    )


# Custom functions.


def laplace_nearest(block):
    return ndimage.laplace(block, mode="nearest")


def laplace_mirror(block):
    return ndimage.laplace(block, mode="mirror")


def laplace_constant(block):
    return ndimage.laplace(block, mode="constant")


# A spec string and importable functions (their module is this one, by name).
LAPLACE = {
    "reflect": "scipy.ndimage:laplace",
    "nearest": laplace_nearest,
    "mirror": laplace_mirror,
    "constant": laplace_constant,
}


@exact_settings(30)
@given(
    data=st.data(),
    x=volumes(ndims=(2, 3), max_side=24),
    halo=st.integers(1, 4),
    mode=st.sampled_from(["reflect", "nearest", "mirror", "constant"]),
)
def test_custom_with_enough_halo_equals_the_function(data, x, halo, mode):
    function = LAPLACE[mode]
    op = ops.custom(function, halo=halo)
    expected = ndimage.laplace(x, mode=mode)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    chunked = processed(x, op, data.draw(layouts(x.shape)))
    np.testing.assert_array_equal(chunked, expected, strict=True)


def test_custom_converts_to_its_dtype():
    x = np.array([[0, 4, 10, 2, 65535]], np.uint16)
    op = ops.custom("numpy:sqrt", dtype="uint8")
    # sqrt in float, then rounded half to even and clipped: 255.998 -> 255.
    expected = np.array([[0, 2, 3, 1, 255]], np.uint8)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    np.testing.assert_array_equal(
        processed(x, op, ((1, 2), (1, 2))), expected, strict=True
    )
    negate = ops.custom("numpy:negative", dtype="int16")
    # The function sees the input dtype: uint8 negation wraps before conversion.
    np.testing.assert_array_equal(
        negate(np.array([[1, 2]], np.uint8)), np.array([[255, 254]], np.int16)
    )


def test_custom_per_axis_halo():
    x = np.random.default_rng(7).uniform(0, 1, (9, 10, 11))
    op = ops.custom("scipy.ndimage:laplace", halo=(1, 1, 1))
    expected = ndimage.laplace(x)
    np.testing.assert_array_equal(
        processed(x, op, ((2, 3, 4), (4, 3, 4))), expected, strict=True
    )
