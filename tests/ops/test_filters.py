"""Neighbourhood filters against scipy.ndimage called directly, whole and chunked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
from chunkwise import ops
from conftest import (
    exact_settings,
    gaussian_derivatives_reference,
    layouts,
    processed,
    spatial_axes,
    volumes,
)

MODES = st.sampled_from(ops.MODES)
CVALS = st.sampled_from([0.0, 2.5, -7.0])


def _axes(ndim: int) -> dict:
    """scipy filters every axis unless told; 4D data has a non-spatial axis 0."""
    return {"axes": spatial_axes(ndim)} if ndim == 4 else {}


def _per_spatial_axis(data, ndim: int, values: st.SearchStrategy):
    """One value for all spatial axes, or one per spatial axis."""
    n = len(spatial_axes(ndim))
    return data.draw(st.one_of(values, st.tuples(*[values] * n)))


GAUSSIAN_FAMILY = {
    "gaussian": (ops.gaussian, ndimage.gaussian_filter),
    "gradient_magnitude": (
        ops.gradient_magnitude,
        ndimage.gaussian_gradient_magnitude,
    ),
    "laplace_of_gaussian": (ops.laplace_of_gaussian, ndimage.gaussian_laplace),
}
SIZE_FILTERS = {
    "median": (ops.median, ndimage.median_filter),
    "minimum": (ops.minimum, ndimage.minimum_filter),
    "maximum": (ops.maximum, ndimage.maximum_filter),
    "uniform": (ops.uniform, ndimage.uniform_filter),
}


def _assert_matches(actual: np.ndarray, expected: np.ndarray, *, exact: bool = True):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(actual, expected, strict=True)
    elif expected.dtype == np.float32:
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-4)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-10)


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(),
    name=st.sampled_from(sorted(GAUSSIAN_FAMILY)),
    mode=MODES,
    cval=CVALS,
    truncate=st.sampled_from([4.0, 2.5]),
)
def test_gaussian_family_is_bit_identical_to_scipy(data, x, name, mode, cval, truncate):
    # scipy's own gradient magnitude of signed integers overflows into sqrt(<0).
    assume(name != "gradient_magnitude" or x.dtype != np.int16)
    sigma = _per_spatial_axis(data, x.ndim, st.floats(0, 3))
    build, scipy_filter = GAUSSIAN_FAMILY[name]
    if name != "gaussian":  # derivatives along the axes of sigma > 0, one at least
        assume(max(sigma if isinstance(sigma, tuple) else (sigma,)) > 1e-15)
    op = build(sigma, mode=mode, cval=cval, truncate=truncate)
    kwargs = {"mode": mode, "cval": cval, "truncate": truncate}
    if name != "gaussian":
        expected = gaussian_derivatives_reference(scipy_filter, x, sigma, **kwargs)
    elif x.ndim == 4:  # each 3D volume on its own
        expected = np.stack([scipy_filter(v, sigma, **kwargs) for v in x])
    else:
        expected = scipy_filter(x, sigma, **kwargs)
    _assert_matches(op(x), expected)
    _assert_matches(processed(x, op, data.draw(layouts(x.shape))), expected)


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(),
    name=st.sampled_from(sorted(SIZE_FILTERS)),
    mode=MODES,
    cval=CVALS,
)
def test_size_filters_match_scipy(data, x, name, mode, cval):
    size = _per_spatial_axis(data, x.ndim, st.integers(1, 5))
    build, scipy_filter = SIZE_FILTERS[name]
    op = build(size, mode=mode, cval=cval)
    expected = scipy_filter(x, size, mode=mode, cval=cval, **_axes(x.ndim))
    # scipy's running sum makes uniform's last float bits depend on the line start.
    exact = name != "uniform" or x.dtype.kind != "f"
    _assert_matches(op(x), expected, exact=exact)
    _assert_matches(
        processed(x, op, data.draw(layouts(x.shape))), expected, exact=exact
    )


def _float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64 if x.dtype == np.float64 else np.float32)


@exact_settings(40)
@given(data=st.data(), x=volumes(), mode=MODES, cval=CVALS)
def test_difference_of_gaussians_is_the_difference_of_scipy_gaussians(
    data, x, mode, cval
):
    low = data.draw(st.floats(0, 1.5))
    high = low + data.draw(st.floats(0, 1.5))
    op = ops.difference_of_gaussians(low, high, mode=mode, cval=cval)
    kwargs = {"mode": mode, "cval": cval, **_axes(x.ndim)}
    values = _float(x)
    expected = ndimage.gaussian_filter(values, low, **kwargs) - (
        ndimage.gaussian_filter(values, high, **kwargs)
    )
    _assert_matches(op(x), expected)
    _assert_matches(processed(x, op, data.draw(layouts(x.shape))), expected)


@exact_settings(40)
@given(data=st.data(), x=volumes(), mode=MODES)
def test_unsharp_mask_is_x_plus_amount_times_detail(data, x, mode):
    sigma = data.draw(st.floats(0, 3))
    amount = data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.75]))
    op = ops.unsharp_mask(sigma, amount, mode=mode)
    values = _float(x)
    blurred = ndimage.gaussian_filter(values, sigma, mode=mode, **_axes(x.ndim))
    expected = values + values.dtype.type(amount) * (values - blurred)
    _assert_matches(op(x), expected)
    _assert_matches(processed(x, op, data.draw(layouts(x.shape))), expected)


@pytest.mark.parametrize("mode", ops.MODES)
def test_halo_wider_than_several_chunks(mode):
    # sigma 3 reaches 12 voxels: three chunks of 4 on each side of every block.
    x = np.random.default_rng(3).integers(0, 4096, (19, 23, 17), dtype=np.uint16)
    op = ops.gaussian(3, mode=mode, cval=100)
    expected = ndimage.gaussian_filter(x, 3, mode=mode, cval=100)
    _assert_matches(op(x), expected)
    _assert_matches(processed(x, op, ((4, 5, 4), (8, 5, 4))), expected)


@pytest.mark.parametrize("mode", ["wrap", "reflect", "mirror", "nearest"])
def test_reach_longer_than_the_volume(mode):
    # The kernel is wider than the whole axis: boundary modes apply many times over.
    x = np.random.default_rng(4).uniform(0, 1, (3, 2, 30)).astype(np.float32)
    op = ops.gaussian((3, 2, 1), mode=mode)
    expected = ndimage.gaussian_filter(x, (3, 2, 1), mode=mode)
    _assert_matches(op(x), expected)
    _assert_matches(processed(x, op, ((1, 1, 7), (2, 1, 7))), expected)


def test_4d_filters_never_mix_the_leading_axis():
    x = np.zeros((3, 9, 9, 9), np.float64)
    x[1, 4, 4, 4] = 1.0
    cases = [
        (ops.gaussian(1.5), ndimage.gaussian_filter(x[1], 1.5)),
        (ops.maximum(3), ndimage.maximum_filter(x[1], 3)),
        (ops.median((1, 3, 3)), ndimage.median_filter(x[1], (1, 3, 3))),
    ]
    for op, plane in cases:
        result = processed(x, op, ((1, 4, 4, 4), (2, 4, 8, 4)))
        assert not result[0].any()
        assert not result[2].any()
        np.testing.assert_array_equal(result[1], plane)


def test_size_0_and_1_leave_an_axis_unfiltered():
    x = np.random.default_rng(5).integers(0, 100, (6, 7, 8), dtype=np.uint8)
    expected = ndimage.median_filter(x, (1, 3, 1))
    _assert_matches(ops.median((0, 3, 1))(x), expected)
    _assert_matches(
        processed(x, ops.median((0, 3, 1)), ((2, 3, 3), (2, 3, 3))), expected
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("sigma", [0.7, 2.01, (3, 1, 0.5)])
def test_gaussian_planes_equal_scipys_whole_array_result(dtype, sigma):
    # A thin region (a preview plane) takes the pass that filters only the planes
    # kept; near the borders it falls back to scipy's. Both must equal scipy.
    rng = np.random.default_rng(11)
    volume = (rng.random((40, 33, 29)) * 400 - 100).astype(dtype)
    if np.dtype(dtype).kind == "u":
        volume = (rng.random((40, 33, 29)) * 250).astype(dtype)
    op = ops.gaussian(sigma)
    expected = ndimage.gaussian_filter(volume, sigma)
    for region in [
        (slice(20, 21), slice(None), slice(None)),
        (slice(0, 1), slice(None), slice(None)),
        (slice(None), slice(16, 18), slice(None)),
        (slice(None), slice(None), slice(28, 29)),
        (slice(5, 6), slice(3, 30), slice(10, 11)),
    ]:
        np.testing.assert_array_equal(
            chunkwise.compute_region(volume, op, region), expected[region]
        )
