"""Linear filters and Gaussian derivatives against scipy.ndimage on the whole array.

Every case runs through the real engine (`chunkwise.process`) in several chunkings,
chunks of 1 and chunks smaller than the halo among them, and must be bit-identical
to scipy called here on the whole array. The parameter grids marked "scipy" and
"dask-image" are those of scipy's ``ndimage/tests/test_filters.py`` and of
dask-image's ``tests/test_dask_image/test_ndfilters`` (their parameters are facts;
the test code is ours).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import zarr
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise.cli import main
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
#: scipy's ``types``: every integer and float dtype.
TYPES = [
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
]
OUTPUT_DTYPES = st.sampled_from([None, "float32", "float64", "int32", "uint16"])


def _assert_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected, strict=True)


def _chunkings(shape, *extra) -> list:
    """Chunks of 1, chunks of 2 (smaller than most halos here), chunks of 3 in
    blocks of 2 per axis, and any ``extra`` chunks (one per block)."""
    n = len(shape)
    found = [((1,) * n, (1,) * n), ((2,) * n, (2,) * n), ((3,) * n, (6,) * n)]
    return found + [(tuple(c), tuple(c)) for c in extra]


def _check(x: np.ndarray, op: ops.Operation, expected: np.ndarray, chunkings=None):
    """``op`` on the whole array and chunked, against ``expected``."""
    _assert_exact(op(x), expected)
    for layout in chunkings or _chunkings(x.shape):
        _assert_exact(processed(x, op, layout), expected)


def _reference(function, x, kernel, **kwargs):
    """scipy's correlate or convolve, on the spatial axes for a smaller kernel."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != x.ndim:
        kwargs["axes"] = spatial_axes(x.ndim)
    return function(x, kernel, **kwargs)


KERNEL_OPS = {
    "correlate": (ops.correlate, ndimage.correlate),
    "convolve": (ops.convolve, ndimage.convolve),
}


# --- correlate and convolve ------------------------------------------------------


@st.composite
def kernels(draw, ndim: int, max_side: int = 5):
    values = draw(
        st.sampled_from(
            [
                st.integers(-4, 4).map(float),
                st.floats(-2, 2, allow_subnormal=False),
            ]
        )
    )
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(ndim))
    flat = draw(
        st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
    )
    return np.array(flat, dtype=np.float64).reshape(shape)


@st.composite
def origins(draw, shape):
    """0, one origin valid on every axis, or one per axis."""
    low = max(-(n // 2) for n in shape)
    high = min((n - 1) // 2 for n in shape)
    per_axis = st.tuples(*[st.integers(-(n // 2), (n - 1) // 2) for n in shape])
    return draw(st.one_of(st.just(0), st.integers(low, high), per_axis))


@exact_settings(80)
@given(
    data=st.data(),
    x=volumes(max_side=24),
    name=st.sampled_from(sorted(KERNEL_OPS)),
    mode=MODES,
    cval=CVALS,
    dtype=OUTPUT_DTYPES,
)
def test_correlate_and_convolve_are_bit_identical_to_scipy(
    data, x, name, mode, cval, dtype
):
    # A 4D volume takes a kernel of its 3 spatial axes or of all 4.
    kernel_ndim = data.draw(
        st.sampled_from(sorted({len(spatial_axes(x.ndim)), x.ndim}))
    )
    kernel = data.draw(
        kernels(kernel_ndim, max_side=data.draw(st.sampled_from([3, 5, 8])))
    )
    origin = data.draw(origins(kernel.shape))
    build, function = KERNEL_OPS[name]
    op = build(kernel, mode=mode, cval=cval, origin=origin, dtype=dtype)
    expected = _reference(
        function, x, kernel, mode=mode, cval=cval, origin=origin, output=dtype
    )
    _assert_exact(op(x), expected)
    _assert_exact(processed(x, op, data.draw(layouts(x.shape))), expected)


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("mode", ops.MODES)
def test_kernel_larger_than_the_chunks_and_the_volume(name, mode):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 1000, (5, 7, 6)).astype(np.float64)
    kernel = rng.integers(-3, 4, (9, 3, 14)).astype(np.float64)
    origin = (2, -1, -4)
    build, function = KERNEL_OPS[name]
    op = build(kernel, mode=mode, cval=-5.0, origin=origin)
    expected = function(x, kernel, mode=mode, cval=-5.0, origin=origin)
    _check(x, op, expected)


def test_compute_region_of_a_kernel_near_the_faces():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4096, (20, 21, 22)).astype(np.uint16)
    kernel = rng.integers(-2, 3, (3, 4, 5)).astype(np.float64)
    for mode in ("wrap", "mirror", "constant"):
        op = ops.convolve(kernel, mode=mode, origin=(1, -2, 0), dtype="float32")
        expected = ndimage.convolve(
            x, kernel, mode=mode, origin=(1, -2, 0), output=np.float32
        )
        for region in [
            (slice(0, 1), slice(None), slice(None)),
            (slice(None), slice(20, 21), slice(None)),
            (slice(4, 9), slice(0, 3), slice(19, 22)),
        ]:
            _assert_exact(chunkwise.compute_region(x, op, region), expected[region])


# dask-image test__conv.py: weights and origins on arange(140.).reshape(10, 14),
# compared with scipy, in dask-image's chunks (5, 7) and ours.
_DISK = (np.mgrid[-2:3, -2:3] ** 2).sum(axis=0) < 2.5**2
DASK_IMAGE_WEIGHTS = [
    (np.ones((1, 1)), 0),
    (np.ones((2, 2)), 0),
    (np.ones((2, 3)), 0),
    (np.ones((2, 3)), (0, 1)),
    (np.ones((2, 3)), (0, -1)),
    (_DISK, 0),
    (_DISK, (1, 2)),
    (_DISK, (-1, -2)),
    (np.ones((5, 5)), 0),
    (np.ones((7, 7)), 0),
    (np.ones((8, 8)), 0),
    (np.ones((10, 10)), 0),
    (np.ones((5, 5)), 2),
    (np.ones((5, 5)), -2),
]


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize(("weights", "origin"), DASK_IMAGE_WEIGHTS)
def test_dask_image_convolution_grid(name, weights, origin):
    a = np.arange(140.0).reshape(10, 14)
    build, function = KERNEL_OPS[name]
    op = build(weights, origin=origin)
    _check(a, op, function(a, weights, origin=origin), _chunkings(a.shape, (5, 7)))


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("weights", [np.ones((1, 5)), np.ones((5, 1))])
@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "constant", "mirror"])
def test_dask_image_convolution_modes(name, weights, mode):
    a = np.arange(140).reshape(10, 14)
    build, function = KERNEL_OPS[name]
    op = build(weights, mode=mode)
    _check(a, op, function(a, weights, mode=mode), _chunkings(a.shape, (5, 7)))


# scipy test_correlate01-08 and 17 (1D signals, run here as (1, n) volumes with
# (1, k) kernels) and 11, 12 (2D).
SCIPY_SIGNALS = [
    ([1, 2], [2], 0),
    ([1, 2, 3], [1], 0),
    ([1], [1, 1], 0),
    ([1, 2], [1, 1], 0),
    ([1, 2, 3], [1, 1], 0),
    ([1, 2, 3], [1, 2, 3], 0),
    ([1, 2, 3], [1, 2, 1], 0),
    ([1, 2, 3], [1, 2, -1], 0),
    ([1, 2, 3], [1, 1], -1),
]


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize(("signal", "weights", "origin"), SCIPY_SIGNALS)
def test_scipy_signals(name, signal, weights, origin):
    x = np.array([signal], dtype=np.int64)
    kernel = np.array([weights], dtype=np.float64)
    build, function = KERNEL_OPS[name]
    op = build(kernel, origin=(0, origin))
    _check(x, op, function(x, kernel, origin=(0, origin)))


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("kernel", [[[1, 1], [1, 1]], [[1, 0], [0, 1]]])
def test_scipy_2d(name, kernel):
    x = np.array([[1, 2, 3], [4, 5, 6]])
    build, function = KERNEL_OPS[name]
    _check(x, build(kernel), function(x, kernel))


#: The dtype grids run in chunks of 1 only: hundreds of cases.
ONES_2D = ((1, 1), (1, 1))


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("dtype_array", TYPES)
@pytest.mark.parametrize("dtype_output", TYPES)
def test_scipy_output_dtypes(name, dtype_array, dtype_output):
    # scipy test_correlate13, 14, 15 (and 16 with halves) over every dtype pair.
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=dtype_array)
    build, function = KERNEL_OPS[name]
    for kernel in ([[1, 0], [0, 1]], [[0.5, 0], [0, 0.5]]):
        op = build(kernel, dtype=dtype_output)
        _check(x, op, function(x, kernel, output=dtype_output), [ONES_2D])


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("dtype_array", TYPES)
@pytest.mark.parametrize("origin", [-1, (-1, 0)])
def test_scipy_nearest_with_origins(name, dtype_array, origin):
    # scipy test_correlate18 and 19.
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=dtype_array)
    kernel = [[1, 0], [0, 1]]
    build, function = KERNEL_OPS[name]
    op = build(kernel, mode="nearest", origin=origin, dtype="float32")
    expected = function(x, kernel, mode="nearest", origin=origin, output=np.float32)
    _check(x, op, expected)


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("dtype_array", TYPES)
@pytest.mark.parametrize("dtype_output", TYPES)
def test_scipy_along_axis_0(name, dtype_array, dtype_output):
    # scipy test_correlate20-25: weights [1, 2, 1] along axis 0, as a (3, 1) kernel.
    x = np.array([[1, 2, 3], [2, 4, 6]], dtype=dtype_array)
    kernel = [[1], [2], [1]]
    build, function = KERNEL_OPS[name]
    for mode, origin in [
        ("reflect", 0),
        ("wrap", 0),
        ("nearest", 0),
        ("nearest", -1),
        ("nearest", 1),
    ]:
        op = build(kernel, mode=mode, origin=(origin, 0), dtype=dtype_output)
        expected = function(
            x, kernel, mode=mode, origin=(origin, 0), output=dtype_output
        )
        _check(x, op, expected, [ONES_2D])


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_scipy_mirror_of_one_voxel(name):
    # scipy test_correlate26 (gh-11661): a kernel of 5 on a signal of 1, mirrored.
    x = np.ones((1, 1))
    build, function = KERNEL_OPS[name]
    op = build(np.ones((1, 5)), mode="mirror")
    _check(x, op, function(x, np.ones((1, 5)), mode="mirror"))


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "axes",
    [a for a in itertools.combinations(range(-3, 3), 2) if a[0] % 3 != a[1] % 3],
)
@pytest.mark.parametrize("origin", [(0, 0), (-1, 1)])
def test_scipy_kernels_on_two_of_three_axes(name, dtype, axes, origin):
    # scipy test_correlate_convolve_axes: a (3, 5) kernel on two axes of a volume is
    # a 3D kernel with a single voxel along the third.
    x = np.arange(6 * 8 * 12, dtype=dtype).reshape(6, 8, 12)
    weights = np.arange(15.0).reshape(3, 5)
    axes = tuple(a % 3 for a in axes)
    missing = ({0, 1, 2} - set(axes)).pop()
    kernel = np.expand_dims(weights, missing)
    full_origin = [0, 0, 0]
    for axis, o in zip(axes, origin, strict=True):
        full_origin[axis] = o
    build, function = KERNEL_OPS[name]
    op = build(kernel, origin=tuple(full_origin))
    expected = function(x, weights, axes=axes, origin=origin)
    _check(x, op, expected, [((2, 3, 4), (2, 3, 4)), ((5, 5, 5), (5, 5, 10))])


# --- sobel, prewitt, laplace --------------------------------------------------------

EDGES = {"sobel": (ops.sobel, ndimage.sobel), "prewitt": (ops.prewitt, ndimage.prewitt)}


def _edge_reference(function, x, axis, **kwargs):
    """scipy's sobel or prewitt smooths along every axis: one 3D volume at a time."""
    if x.ndim == 4:
        output = kwargs.pop("output", None) or x.dtype
        return np.stack([function(v, axis, output=output, **kwargs) for v in x])
    return function(x, axis, **kwargs)


def _modes(data, ndim: int):
    """One mode, or one per spatial axis."""
    n = len(spatial_axes(ndim))
    return data.draw(st.one_of(MODES, st.tuples(*[MODES] * n)))


@exact_settings(60)
@given(data=st.data(), x=volumes(), name=st.sampled_from(sorted(EDGES)), cval=CVALS)
def test_sobel_and_prewitt_are_bit_identical_to_scipy(data, x, name, cval):
    n = len(spatial_axes(x.ndim))
    axis = data.draw(st.integers(-n, n - 1))
    mode = _modes(data, x.ndim)
    dtype = data.draw(OUTPUT_DTYPES)
    build, function = EDGES[name]
    op = build(axis, mode=mode, cval=cval, dtype=dtype)
    expected = _edge_reference(function, x, axis, mode=mode, cval=cval, output=dtype)
    _assert_exact(op(x), expected)
    _assert_exact(processed(x, op, data.draw(layouts(x.shape))), expected)


@exact_settings(40)
@given(data=st.data(), x=volumes(), cval=CVALS)
def test_laplace_is_bit_identical_to_scipy(data, x, cval):
    mode = _modes(data, x.ndim)
    dtype = data.draw(OUTPUT_DTYPES)
    op = ops.laplace(mode=mode, cval=cval, dtype=dtype)
    expected = ndimage.laplace(
        x, output=dtype, mode=mode, cval=cval, axes=spatial_axes(x.ndim)
    )
    _assert_exact(op(x), expected)
    _assert_exact(processed(x, op, data.draw(layouts(x.shape))), expected)


@pytest.mark.parametrize("name", sorted(EDGES))
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_dask_image_edge_grid(name, axis):
    a = np.arange(1320.0).reshape(10, 11, 12)
    build, function = EDGES[name]
    chunkings = [((5, 5, 6), (5, 5, 6)), ((2, 2, 2), (2, 2, 2))]
    _check(a, build(axis), function(a, axis), chunkings)


def test_dask_image_laplace():
    a = np.arange(1320.0).reshape(10, 11, 12)
    chunkings = [((5, 5, 6), (5, 5, 6)), ((2, 2, 2), (2, 2, 2))]
    _check(a, ops.laplace(), ndimage.laplace(a), chunkings)


SCIPY_EDGE_ARRAY = [[3, 2, 5, 1, 4], [5, 8, 3, 7, 1], [5, 6, 9, 3, 5]]


@pytest.mark.parametrize("name", sorted(EDGES))
@pytest.mark.parametrize("dtype", TYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scipy_edges(name, dtype, axis):
    # scipy test_sobel01-04 and test_prewitt01-04.
    x = np.array(SCIPY_EDGE_ARRAY, dtype=dtype)
    build, function = EDGES[name]
    _check(x, build(axis), function(x, axis))


@pytest.mark.parametrize("dtype", ["int32", "float32", "float64"])
def test_scipy_laplace(dtype):
    # scipy test_laplace01.
    x = np.array(SCIPY_EDGE_ARRAY, dtype=dtype) * 100
    _check(x, ops.laplace(), ndimage.laplace(x))


@pytest.mark.parametrize(
    ("build", "function"),
    [
        (ops.sobel, ndimage.sobel),
        (ops.prewitt, ndimage.prewitt),
        (ops.laplace, ndimage.laplace),
    ],
)
def test_scipy_multiple_modes(build, function):
    # scipy test_multiple_modes_sobel, _prewitt, _laplace (and test_multiple_modes:
    # a sequence of one mode is that mode).
    x = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    _check(x, build(mode=("reflect", "wrap")), function(x, mode=["reflect", "wrap"]))
    _assert_exact(build(mode=("reflect", "reflect"))(x), function(x, mode="reflect"))


def test_edges_of_a_4d_volume_never_mix_the_leading_axis():
    x = np.zeros((3, 6, 7, 8), np.float32)
    x[1, 3, 3, 4] = 1.0
    for op in (ops.sobel(0), ops.prewitt(-1), ops.laplace()):
        result = processed(x, op, ((1, 2, 3, 2), (2, 2, 3, 4)))
        assert not result[0].any() and not result[2].any()
        assert result[1].any()


@pytest.mark.parametrize(
    ("op", "words"),
    [
        (ops.sobel(2), "axis 2"),  # dask-image: axis 2 and -3 of a 2D image
        (ops.prewitt(-3), "axis -3"),
    ],
)
def test_an_axis_the_data_lacks_is_refused(op, words):
    with pytest.raises(chunkwise.ChunkwiseError, match=words):
        op(np.zeros((10, 14)))


# --- Gaussian: order, radius, truncate 0, per-axis modes, dtype ---------------------


def _per_spatial_axis(data, ndim: int, values: st.SearchStrategy):
    n = len(spatial_axes(ndim))
    return data.draw(st.one_of(values, st.tuples(*[values] * n)))


@exact_settings(80)
@given(
    data=st.data(),
    x=volumes(),
    cval=CVALS,
    truncate=st.sampled_from([4.0, 1.5, 0.0]),
)
def test_gaussian_derivatives_are_bit_identical_to_scipy(data, x, cval, truncate):
    sigma = _per_spatial_axis(data, x.ndim, st.floats(0, 3))
    order = _per_spatial_axis(data, x.ndim, st.integers(0, 3))
    radius = None
    if data.draw(st.booleans()):
        radius = _per_spatial_axis(data, x.ndim, st.integers(0, 6))
    mode = _modes(data, x.ndim)
    dtype = data.draw(st.sampled_from([None, "float32", "float64"]))
    op = ops.gaussian(
        sigma,
        order=order,
        mode=mode,
        cval=cval,
        truncate=truncate,
        radius=radius,
        dtype=dtype,
    )
    expected = ndimage.gaussian_filter(
        x,
        sigma,
        order=order,
        output=dtype,
        mode=mode,
        cval=cval,
        truncate=truncate,
        radius=radius,
        axes=spatial_axes(x.ndim),
    )
    _assert_exact(op(x), expected)
    _assert_exact(processed(x, op, data.draw(layouts(x.shape))), expected)


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(dtypes=("uint8", "uint16", "float32", "float64")),
    name=st.sampled_from(["gradient_magnitude", "laplace_of_gaussian"]),
    cval=CVALS,
)
def test_gaussian_derivative_sums_with_radius_modes_and_dtype(data, x, name, cval):
    sigma = _per_spatial_axis(data, x.ndim, st.sampled_from([0.0, 0.8, 1.5, 2.5]))
    assume(max(sigma if isinstance(sigma, tuple) else (sigma,)) > 0)
    radius = None
    if data.draw(st.booleans()):
        radius = _per_spatial_axis(data, x.ndim, st.integers(0, 5))
    # A sequence never mixes wrap and other modes (see test_mixed_wrap_is_refused).
    wrap = ("wrap", "grid-wrap")
    others = tuple(m for m in ops.MODES if m not in wrap)
    choice = st.sampled_from(data.draw(st.sampled_from([wrap, others])))
    n = len(spatial_axes(x.ndim))
    mode = data.draw(st.one_of(choice, st.tuples(*[choice] * n)))
    dtype = data.draw(st.sampled_from([None, "float32", "float64"]))
    build = getattr(ops, name)
    op = build(sigma, mode=mode, cval=cval, radius=radius, dtype=dtype)
    function = {
        "gradient_magnitude": ndimage.gaussian_gradient_magnitude,
        "laplace_of_gaussian": ndimage.gaussian_laplace,
    }[name]
    full_radius = radius
    if isinstance(radius, tuple) and x.ndim == 4:
        full_radius = (0, *radius)
    expected = gaussian_derivatives_reference(
        function, x, sigma, mode=mode, cval=cval, radius=full_radius, output=dtype
    )
    _assert_exact(op(x), expected)
    _assert_exact(processed(x, op, data.draw(layouts(x.shape))), expected)


@pytest.mark.parametrize(
    ("sigma", "truncate"), [(0.0, 0.0), (0.0, 1.0), (0.0, 4.0), (1.0, 0.0)]
)
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_dask_image_gaussian_identity_grid(sigma, truncate, order):
    a = np.arange(140.0).reshape(10, 14)
    op = ops.gaussian(sigma, order=order, truncate=truncate)
    expected = ndimage.gaussian_filter(a, sigma, order, truncate=truncate)
    _check(a, op, expected, _chunkings(a.shape, (5, 7)))


DASK_IMAGE_SIGMAS = [
    (0.0, 0.0),
    (1.0, 0.0),
    (0.0, 1.0),
    (1.0, 2.0),
    (1.0, 4.0),
    (2.0, 2.0),
    (2.0, 4.0),
    ((1.0, 2.0), 4.0),
]
_BIG = [((50, 55), (50, 55)), ((7, 6), (7, 6))]


@pytest.mark.parametrize(("sigma", "truncate"), DASK_IMAGE_SIGMAS)
@pytest.mark.parametrize("order", [0, 1, 2, 3, (0, 1), (2, 3)])
def test_dask_image_gaussian_derivative_grid(sigma, truncate, order):
    a = np.arange(11000.0).reshape(100, 110)
    op = ops.gaussian(sigma, order=order, truncate=truncate)
    expected = ndimage.gaussian_filter(a, sigma, order, truncate=truncate)
    _check(a, op, expected, _BIG)


@pytest.mark.parametrize(("sigma", "truncate"), DASK_IMAGE_SIGMAS[3:])
@pytest.mark.parametrize(
    ("build", "function"),
    [
        (ops.gradient_magnitude, ndimage.gaussian_gradient_magnitude),
        (ops.laplace_of_gaussian, ndimage.gaussian_laplace),
    ],
)
def test_dask_image_gaussian_sums_grid(sigma, truncate, build, function):
    a = np.arange(11000.0).reshape(100, 110)
    op = build(sigma, truncate=truncate)
    _check(a, op, function(a, sigma, truncate=truncate), _BIG)


@pytest.mark.parametrize(
    "kwargs",
    [
        # scipy test_gaussian_radius: radius = int(truncate * sigma + 0.5).
        {"sigma": 0.5, "radius": 2},
        {"sigma": (0.5, 2.5), "radius": (2, 9)},
        # scipy's kwargs_gauss (per-axis radius, order and mode), on two axes.
        {
            "sigma": 1.0,
            "radius": (4, 2),
            "order": (0, 1),
            "mode": ("reflect", "nearest"),
        },
        {
            "sigma": 1.0,
            "radius": (2, 3),
            "order": (1, 2),
            "mode": ("nearest", "constant"),
        },
        # scipy test_gaussian_truncate.
        {"sigma": 5.0, "truncate": 2.0},
        {"sigma": 5.0, "truncate": 5.0},
        {"sigma": (0.5, 2.5), "truncate": 3.5},
        # scipy test_multiple_modes_sequentially.
        {"sigma": 1.0, "mode": ("reflect", "wrap")},
    ],
    ids=str,
)
def test_scipy_gaussian_radius_truncate_and_modes(kwargs):
    kwargs = dict(kwargs)
    a = np.zeros((50, 50))
    a[25, 25] = 1
    a[3, 40] = 2
    sigma = kwargs.pop("sigma")
    op = ops.gaussian(sigma, **kwargs)
    if "mode" in kwargs:
        kwargs["mode"] = list(kwargs["mode"])
    expected = ndimage.gaussian_filter(a, sigma, **kwargs)
    _check(a, op, expected, [((1, 50), (1, 50)), ((2, 3), (4, 6)), ((9, 8), (9, 8))])


def test_scipy_kwargs_gauss_in_3d():
    # scipy's kwargs_gauss on all three axes of a volume.
    x = np.random.default_rng(9).random((6, 7, 8))
    kwargs = {"radius": (4, 2, 3), "order": (0, 1, 2)}
    mode = ("reflect", "nearest", "constant")
    op = ops.gaussian(1.0, mode=mode, **kwargs)
    _check(x, op, ndimage.gaussian_filter(x, 1.0, mode=list(mode), **kwargs))


def test_scipy_orders_of_a_single_voxel():
    # scipy test_orders_gauss, on a (1, 1) volume.
    x = np.zeros((1, 1))
    for order in (0, 3):
        _check(x, ops.gaussian(1, order=order), ndimage.gaussian_filter(x, 1, order))
    with pytest.raises(chunkwise.ChunkwiseError, match="order must be >= 0"):
        ops.gaussian(1, order=-1)


def test_gaussian_planes_with_derivatives_equal_scipy():
    # A preview plane takes scipy's pass along a derivative axis, and the fast
    # pass only where it smooths.
    volume = np.random.default_rng(10).integers(0, 250, (30, 33, 29), dtype=np.uint8)
    for kwargs in ({"order": (1, 0, 2)}, {"dtype": "float32", "order": 1}, {}):
        op = ops.gaussian((2.0, 1.0, 1.5), **kwargs)
        scipy_kwargs = dict(kwargs)
        scipy_kwargs["output"] = scipy_kwargs.pop("dtype", None)
        expected = ndimage.gaussian_filter(volume, (2.0, 1.0, 1.5), **scipy_kwargs)
        for region in [
            (slice(15, 16), slice(None), slice(None)),
            (slice(None), slice(10, 12), slice(None)),
            (slice(3, 4), slice(5, 30), slice(14, 15)),
        ]:
            _assert_exact(
                chunkwise.compute_region(volume, op, region), expected[region]
            )


# --- sigma 0 means "not along this axis" -----------------------------------------

DERIVATIVE_SUMS = {
    "gradient_magnitude": (ops.gradient_magnitude, ndimage.gaussian_gradient_magnitude),
    "laplace_of_gaussian": (ops.laplace_of_gaussian, ndimage.gaussian_laplace),
}


@pytest.mark.parametrize("name", sorted(DERIVATIVE_SUMS))
@pytest.mark.parametrize("sigma", [(0.0, 1.5, 2.0), (2.0, 0.0, 1.0), (0.0, 0.0, 1.2)])
@pytest.mark.parametrize("mode", ["reflect", "wrap", ("nearest", "mirror", "constant")])
def test_zero_sigma_axes_are_left_alone(name, sigma, mode):
    x = np.random.default_rng(12).integers(0, 4000, (5, 6, 7)).astype(np.float32)
    build, function = DERIVATIVE_SUMS[name]
    expected = gaussian_derivatives_reference(function, x, sigma, mode=mode)
    _check(x, build(sigma, mode=mode), expected)


@pytest.mark.parametrize("name", sorted(DERIVATIVE_SUMS))
def test_a_zero_sigma_axis_is_the_2d_operation_on_each_plane(name):
    # sigma 0 along z: each z plane gets the 2D operation of its own (before, the
    # z term added the smoothed image itself, differences up to 1147).
    x = np.random.default_rng(19).integers(0, 4000, (6, 9, 10)).astype(np.float32)
    build, function = DERIVATIVE_SUMS[name]
    expected = np.stack([function(plane, 2.0) for plane in x])
    _check(x, build((0.0, 2.0, 2.0)), expected)


def test_a_zero_sigma_axis_contributes_nothing():
    # Data that varies along z only has no gradient along y and x, and z is left
    # alone: exactly 0.
    z = np.arange(12, dtype=np.float64)[:, None, None] ** 2
    x = np.broadcast_to(z, (12, 9, 10)).copy()
    result = processed(x, ops.gradient_magnitude((0.0, 2.0, 2.0)), ((3, 4, 5),) * 2)
    assert not result.any()


@pytest.mark.parametrize("name", sorted(DERIVATIVE_SUMS))
@pytest.mark.parametrize("sigma", [1.5, (1.0, 2.0, 0.5)])
def test_sigma_above_0_everywhere_is_scipys_plain_call(name, sigma):
    x = np.random.default_rng(13).integers(0, 4000, (5, 6, 7)).astype(np.uint16)
    build, function = DERIVATIVE_SUMS[name]
    _check(x, build(sigma), function(x, sigma))


@pytest.mark.parametrize("name", sorted(DERIVATIVE_SUMS))
@pytest.mark.parametrize("sigma", [0, 0.0, (0, 0, 0)])
def test_sigma_0_on_every_axis_is_refused(name, sigma):
    with pytest.raises(chunkwise.ChunkwiseError, match="sigma must be above 0") as e:
        getattr(ops, name)(sigma)
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("name", sorted(DERIVATIVE_SUMS))
def test_mixed_wrap_is_refused(name):
    # scipy test_multiple_modes_gaussian_laplace / _gradient_magnitude use
    # ["reflect", "wrap"]: scipy filters each term with one mode along every axis,
    # which a block cannot be cut and wrapped for at once.
    with pytest.raises(chunkwise.ChunkwiseError, match="mixes wrap and other modes"):
        getattr(ops, name)(1.0, mode=("reflect", "wrap"))
    # Along an axis of sigma 0 the mode is never used.
    getattr(ops, name)((0.0, 1.0), mode=("wrap", "reflect"))


@pytest.mark.parametrize("build", [ops.unsharp_mask, ops.difference_of_gaussians])
def test_float_gaussian_ops_take_radius_and_per_axis_modes(build):
    x = np.random.default_rng(14).integers(0, 250, (7, 8, 9)).astype(np.uint8)
    values = x.astype(np.float32)
    mode = ("wrap", "reflect", "constant")
    kwargs = {"mode": list(mode), "cval": 3.0, "radius": (1, 3, 2), "axes": (0, 1, 2)}
    if build is ops.unsharp_mask:
        op = build((1.0, 2.0, 0.5), 0.5, mode=mode, cval=3.0, radius=(1, 3, 2))
        blurred = ndimage.gaussian_filter(values, (1.0, 2.0, 0.5), **kwargs)
        expected = values + np.float32(0.5) * (values - blurred)
    else:
        op = build(0.5, (1.0, 2.0, 1.5), mode=mode, cval=3.0, radius=(1, 3, 2))
        expected = ndimage.gaussian_filter(values, 0.5, **kwargs) - (
            ndimage.gaussian_filter(values, (1.0, 2.0, 1.5), **kwargs)
        )
    _check(x, op, expected)


def _per_volume(function, x):
    """``function`` on each 3D volume of 5D data."""
    return np.stack([np.stack([function(v) for v in w]) for w in x])


SIGNAL = np.random.default_rng(20).integers(0, 200, 29).astype(np.int16)
VOLUMES_5D = np.random.default_rng(21).random((2, 2, 4, 5, 6)).astype(np.float32)
AXES_5D = (2, 3, 4)


@pytest.mark.parametrize(
    ("x", "op", "expected"),
    [
        (
            SIGNAL,
            ops.correlate([1, 2, -1, 5], origin=-2, mode="wrap"),
            ndimage.correlate(SIGNAL, [1, 2, -1, 5], origin=-2, mode="wrap"),
        ),
        (SIGNAL, ops.sobel(mode="nearest"), ndimage.sobel(SIGNAL, mode="nearest")),
        (SIGNAL, ops.laplace(dtype="float32"), ndimage.laplace(SIGNAL, np.float32)),
        (
            SIGNAL,
            ops.gaussian(1.5, order=2, dtype="float64"),
            ndimage.gaussian_filter(SIGNAL, 1.5, 2, np.float64),
        ),
        (
            VOLUMES_5D,
            ops.convolve(np.ones((2, 3, 1)), origin=(-1, 0, 0), mode="grid-wrap"),
            ndimage.convolve(
                VOLUMES_5D,
                np.ones((2, 3, 1)),
                origin=(-1, 0, 0),
                mode="grid-wrap",
                axes=AXES_5D,
            ),
        ),
        (
            VOLUMES_5D,
            ops.prewitt(0, mode=("wrap", "mirror", "constant"), cval=2),
            _per_volume(
                lambda v: ndimage.prewitt(
                    v, 0, mode=["wrap", "mirror", "constant"], cval=2
                ),
                VOLUMES_5D,
            ),
        ),
        (
            VOLUMES_5D,
            ops.laplace_of_gaussian((1.0, 0.0, 1.5)),
            ndimage.gaussian_laplace(VOLUMES_5D, (1.0, 1.5), axes=(2, 4)),
        ),
    ],
    ids=[
        "1d-correlate",
        "1d-sobel",
        "1d-laplace",
        "1d-gaussian",
        "5d-convolve",
        "5d-prewitt",
        "5d-laplace_of_gaussian",
    ],
)
def test_1d_and_5d_data(x, op, expected):
    _check(x, op, expected, [((1,) * x.ndim,) * 2, ((2,) * x.ndim, (4,) * x.ndim)])


# --- parameters: validation, records, text -----------------------------------------


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: ops.correlate([[1, 2], [3]]), "kernel must be a rectangular array"),
        (lambda: ops.correlate(np.ones((1, 0))), "kernel must be a non-empty array"),
        (lambda: ops.convolve([[1j, 1]]), "kernel must be real numbers"),
        (lambda: ops.correlate([[1, np.nan]]), "kernel must hold finite numbers"),
        (lambda: ops.correlate(3), "kernel must be an array"),
        (lambda: ops.correlate("psf.tif"), "kernel must be nested lists or a .npy"),
        (lambda: ops.correlate("missing.npy"), "kernel: cannot read missing.npy"),
        (lambda: ops.correlate("[[1, 2]"), "kernel: cannot read"),
        (lambda: ops.correlate([["a", "b"]]), "kernel must be a non-empty array"),
        # dask-image test_convolutions_params and scipy test_valid_origins1.
        (lambda: ops.correlate(np.ones((1, 1)), origin=(0,)), "origin has 1 values"),
        (lambda: ops.correlate(np.ones((1, 1)), origin=[(0,)]), "origin must be"),
        (lambda: ops.convolve(np.ones((1, 1)), origin=1), "origin 1 is outside"),
        (lambda: ops.correlate(np.ones((1, 1)), origin=1 + 0j), "origin must be"),
        (lambda: ops.correlate([[1, 1, 2, 0]], origin=(0, 2)), "origin 2 is outside"),
        (lambda: ops.correlate([[0, 1, 2]], origin=(0, 2)), "origin 2 is outside"),
        (lambda: ops.correlate(np.ones((2, 2)), origin=(0, 1)), "origin 1 is outside"),
        (lambda: ops.convolve([np.ones(3)], origin=(0, -2)), "origin -2 is outside"),
        (lambda: ops.convolve(np.ones((2, 2)), origin=(0, -2)), "origin -2 is outside"),
        # scipy test_correlate_mode_sequence.
        (lambda: ops.correlate(np.ones((2, 2)), mode=("nearest", "reflect")), "mode"),
        (lambda: ops.convolve([[1]], mode="circular"), "mode must be one of"),
        (lambda: ops.convolve([[1]], dtype="complex64"), "dtype must be a boolean"),
        (lambda: ops.sobel(1.5), "axis must be a whole number"),
        (lambda: ops.laplace(dtype="float16"), "dtype float16"),
        # scipy test_gaussian_radius_invalid.
        (lambda: ops.gaussian(1, radius=-1), "radius must be >= 0"),
        (lambda: ops.gaussian(1, radius=1.1), "radius must be a whole number"),
        (lambda: ops.gaussian(1, truncate=-1), "truncate must be >= 0"),
        (lambda: ops.gaussian(1, order=(1, -1)), "order must be >= 0"),
        # dask-image test_gaussian_filters_params (complex sigma, truncate).
        (lambda: ops.gaussian(1.0 + 0j), "sigma must be"),
        (lambda: ops.gaussian(1.0, truncate=4 + 0j), "truncate must be"),
    ],
)
def test_bad_parameters_are_one_line_errors(build, words):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        build()
    message = str(error.value)
    assert words in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("op", "shape", "words"),
    [
        # dask-image: a 1D kernel for a 2D image.
        (ops.correlate(np.ones(3)), (10, 14), "kernel has 1 dimensions"),
        (ops.convolve(np.ones((3, 3))), (4, 5, 6), "kernel has 2 dimensions"),
        (ops.gaussian((1, 2)), (4, 5, 6), "sigma has 2 values"),
        (ops.gaussian(1, order=(1, 2)), (4, 5, 6), "order has 2 values"),
        (ops.gaussian(1, radius=(1, 2)), (4, 5, 6), "radius has 2 values"),
        (ops.laplace(mode=("wrap", "reflect")), (4, 5, 6), "mode has 2 values"),
        (ops.gaussian(1, radius=500), (4, 5, 6), "radius 500 needs a kernel"),
    ],
)
def test_what_does_not_fit_the_data_is_refused_before_running(op, shape, words):
    with pytest.raises(chunkwise.ChunkwiseError, match=words):
        chunkwise.process(np.zeros(shape, np.float32), op)


def test_truncate_0_and_radius_0_are_kernels_of_one_voxel():
    x = np.random.default_rng(15).random((6, 7))
    for op, expected in [
        (ops.gaussian(2.0, truncate=0), ndimage.gaussian_filter(x, 2.0, truncate=0)),
        (ops.gaussian(2.0, radius=0), ndimage.gaussian_filter(x, 2.0, radius=0)),
    ]:
        np.testing.assert_array_equal(expected, x)  # scipy's own: the identity
        _check(x, op, expected)


OPERATIONS = [
    ops.correlate([[0, 1, 0], [1, -4, 1], [0, 1, 0]], mode="wrap"),
    ops.convolve(np.arange(24).reshape(2, 3, 4) / 7, origin=(-1, 0, 1), dtype="int32"),
    ops.correlate([[True, False]], cval=2.5, origin=(0, -1)),
    ops.sobel(0, mode=("wrap", "reflect", "nearest"), dtype="float32"),
    ops.prewitt(-1, cval=3),
    ops.laplace(mode="mirror"),
    ops.gaussian((1, 2, 0), order=(1, 0, 2), radius=(3, 2, 0), truncate=0),
    ops.gaussian(2, mode=("wrap", "grid-wrap", "reflect"), dtype="float64"),
    ops.gradient_magnitude((0, 1, 1), radius=4, dtype="float32"),
    ops.laplace_of_gaussian(1.5, mode=("nearest", "mirror", "constant")),
    ops.difference_of_gaussians(1, 2, radius=(1, 2, 3)),
    ops.unsharp_mask(2, 1.5, mode="grid-wrap", radius=5),
]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_records_round_trip_through_json(op):
    record = json.loads(json.dumps(op.to_dict()))
    rebuilt = ops.from_dict(record)
    assert rebuilt == op
    assert hash(rebuilt) == hash(op)
    assert rebuilt.to_dict() == op.to_dict()


def test_a_kernel_is_kept_as_numbers_not_as_its_file(tmp_path):
    kernel = np.random.default_rng(16).normal(size=(3, 1, 4)).astype(np.float32)
    np.save(tmp_path / "psf.npy", kernel)
    from_path = ops.convolve(tmp_path / "psf.npy", mode="nearest")
    from_text = ops.convolve(str(tmp_path / "psf.npy"), mode="nearest")
    assert from_path == from_text == ops.convolve(kernel, mode="nearest")
    record = json.loads(json.dumps(from_path.to_dict()))
    assert record["kernel"] == kernel.astype(np.float64).tolist()
    (tmp_path / "psf.npy").unlink()
    assert ops.from_dict(record) == from_path


def test_text_forms():
    assert ops.parse("correlate:kernel=[[0,1,0],[1,-4,1],[0,1,0]],mode=wrap") == (
        ops.correlate([[0, 1, 0], [1, -4, 1], [0, 1, 0]], mode="wrap")
    )
    assert ops.parse("convolve:kernel=[[1,2]],origin=0/-1,dtype=float32") == (
        ops.convolve([[1, 2]], origin=(0, -1), dtype="float32")
    )
    assert ops.parse("sobel:axis=-2,mode=wrap/reflect/nearest") == (
        ops.sobel(-2, mode=("wrap", "reflect", "nearest"))
    )
    assert ops.parse("gaussian:sigma=1/2/0,order=1/0/2,radius=3/2/0,truncate=0") == (
        ops.gaussian((1, 2, 0), order=(1, 0, 2), radius=(3, 2, 0), truncate=0)
    )
    # The form's text field gives the kernel as JSON text.
    assert ops.correlate("[[1, 2], [3, 4]]") == ops.correlate([[1, 2], [3, 4]])


# --- the command line ------------------------------------------------------------


@pytest.fixture
def stored(tmp_path):
    data = np.random.default_rng(17).integers(0, 4096, (13, 17, 19), dtype=np.uint16)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(5, 6, 7))
    return path, data


def _run(stored, tmp_path, op: str, name: str = "out.zarr") -> np.ndarray:
    path, _ = stored
    out = tmp_path / name
    argv = ["run", str(path), str(out), "--op", op, "--chunks", "4,4,4", "-j", "2"]
    assert main([*argv, "--quiet"]) == 0
    return zarr.open_array(out, mode="r")


def test_cli_convolve_with_a_kernel_file(stored, tmp_path, monkeypatch):
    _, data = stored
    kernel = np.random.default_rng(18).integers(-3, 4, (3, 5, 2)).astype(np.float64)
    np.save(tmp_path / "K.npy", kernel)
    expected = ndimage.convolve(data, kernel, mode="wrap", output=np.float32)
    # An absolute path (its / are not per-axis separators) and a relative one.
    absolute = _run(
        stored,
        tmp_path,
        f"convolve:kernel={tmp_path / 'K.npy'},mode=wrap,dtype=float32",
    )
    _assert_exact(absolute[:], expected)
    monkeypatch.chdir(tmp_path)
    relative = _run(
        stored, tmp_path, "convolve:kernel=K.npy,mode=wrap,dtype=float32", "r.zarr"
    )
    _assert_exact(relative[:], expected)
    # The record holds the numbers, not the file.
    record = relative.attrs["chunkwise"]["operation"]
    assert record["kernel"] == kernel.tolist()


def test_cli_inline_kernel_and_edges(stored, tmp_path):
    _, data = stored
    laplacian = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    result = _run(
        stored,
        tmp_path,
        "correlate:kernel=[[[0,1,0],[1,-4,1],[0,1,0]]],mode=mirror,dtype=int32",
    )
    expected = ndimage.correlate(data, [laplacian], mode="mirror", output=np.int32)
    _assert_exact(result[:], expected)
    result = _run(stored, tmp_path, "sobel:axis=0,mode=wrap/reflect/nearest", "s.zarr")
    expected = ndimage.sobel(data, 0, mode=["wrap", "reflect", "nearest"])
    _assert_exact(result[:], expected)
    result = _run(
        stored, tmp_path, "gaussian:sigma=2/1/0,order=1/0/0,dtype=float32", "g.zarr"
    )
    expected = ndimage.gaussian_filter(data, (2, 1, 0), (1, 0, 0), output=np.float32)
    _assert_exact(result[:], expected)


def test_cli_bad_kernel_is_one_line(stored, tmp_path, capsys):
    path, _ = stored
    out = tmp_path / "out.zarr"
    argv = ["run", str(path), str(out), "--op", "convolve:kernel=[[1,2],[3]]"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kernel" in err
    assert not out.exists()
