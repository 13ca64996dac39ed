"""Rank filters, footprints, origins and per-axis modes against scipy.ndimage.

Every result is compared with scipy on the whole array in memory, through the real
engine (``chunkwise.process`` over several chunkings, chunks of 1 and chunks smaller
than the halo included). The parameter grids of scipy's ``test_filters.py`` and
dask-image's ``test__order.py``/``test__smooth.py`` are ported as facts; the
expected values are always scipy's own results, never typed in.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage
from tests.functions import GENERIC_GRID

import chunkwise
from chunkwise import ops
from chunkwise.cli import main
from conftest import exact_settings, layouts, make_volume, processed, spatial_axes

DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
SCIPY = {
    "median": ndimage.median_filter,
    "minimum": ndimage.minimum_filter,
    "maximum": ndimage.maximum_filter,
    "rank_filter": ndimage.rank_filter,
    "percentile_filter": ndimage.percentile_filter,
    "uniform": ndimage.uniform_filter,
}
#: The filters that take a footprint (all but uniform).
ORDER = ("median", "minimum", "maximum", "rank_filter", "percentile_filter")
#: Chunkings of the 3D grids below: whole, uneven, smaller than the halo, of 1.
CHUNKINGS_2D = [
    ((10, 14), (10, 14)),
    ((5, 7), (5, 7)),
    ((3, 4), (6, 4)),
    ((1, 1), (2, 3)),
]


def build(name: str, arg, **kwargs) -> ops.Operation:
    """The chunkwise operation; ``arg`` is the rank or percentile where one is taken."""
    cls = ops.CATALOGUE[name]
    return cls(arg, **kwargs) if arg is not None else cls(**kwargs)


def reference(name: str, x: np.ndarray, arg, **kwargs) -> np.ndarray:
    """scipy on the whole array, filtering the spatial axes only."""
    if x.ndim > 3:
        kwargs["axes"] = spatial_axes(x.ndim)
    if isinstance(kwargs.get("footprint"), str):
        kwargs["footprint"] = named(kwargs["footprint"], len(spatial_axes(x.ndim)))
    args = () if arg is None else (arg,)
    return SCIPY[name](x, *args, **kwargs)


def named(text: str, ndim: int) -> np.ndarray:
    """The named footprints, built independently of chunkwise."""
    kind, _, value = text.partition(":")
    if kind == "box":
        return np.ones((int(value),) * ndim, bool)
    if kind == "cross":
        radius = int(value or 1)
        cross = ndimage.generate_binary_structure(ndim, 1)
        if radius == 0:
            return np.ones((1,) * ndim, bool)
        return ndimage.iterate_structure(cross, radius)
    radius = float(value)
    r = int(radius)
    grid = np.mgrid[tuple(slice(-r, r + 1) for _ in range(ndim))]
    return (grid**2).sum(axis=0) <= radius**2


def assert_same(actual: np.ndarray, expected: np.ndarray, *, exact: bool = True):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(actual, expected, strict=True)
    else:  # scipy's running sum: uniform's last float bits depend on a line's start
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-4)


def assert_chunked(op, x, expected, chunkings, *, exact: bool = True):
    assert_same(op(x), expected, exact=exact)
    for layout in chunkings:
        assert_same(processed(x, op, layout), expected, exact=exact)


# The named footprints.


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "text",
    [
        "ball:0",
        "ball:1",
        "ball:1.5",
        "ball:2",
        "ball:2.5",
        "cross",
        "cross:0",
        "cross:2",
        "cross:3",
        "box:1",
        "box:2",
        "box:4",
    ],
)
def test_named_footprints_are_the_documented_shapes(ndim, text):
    from chunkwise.ops._footprint import check_footprint, footprint_array

    expected = named(text, ndim)
    built = footprint_array(check_footprint(text), ndim)
    np.testing.assert_array_equal(built, expected, strict=True)
    if ndim > 3:
        return  # 4D data has 3 spatial axes: see the 4D and 5D test
    # Through a filter: the maximum of a single bright voxel draws the footprint.
    x = np.zeros((9,) * ndim, np.uint8)
    x[(4,) * ndim] = 1
    drawn = ops.maximum(footprint=text, mode="constant")(x)
    np.testing.assert_array_equal(
        drawn, ndimage.maximum_filter(x, footprint=expected, mode="constant")
    )
    assert drawn.sum() == expected.sum()


def test_a_ball_is_what_its_name_says():
    from chunkwise.ops._footprint import footprint_array

    ball = footprint_array("ball:2", 3)
    assert ball.shape == (5, 5, 5)
    assert ball[2, 2, 0] and ball[2, 0, 2] and ball[0, 2, 2]
    assert not ball[0, 0, 2] and not ball[1, 1, 0]  # sqrt(8), sqrt(6) > 2
    assert ball[1, 1, 1]  # sqrt(3) <= 2
    assert ball.sum() == 33


# Random volumes, windows, origins and modes, 1D to 5D.


@st.composite
def shapes_1d_to_5d(draw) -> tuple[int, ...]:
    ndim = draw(st.sampled_from([1, 2, 3, 4, 5]))
    side = {1: 60, 2: 30, 3: 14, 4: 9, 5: 7}[ndim]
    spatial = [draw(st.integers(1, side)) for _ in range(min(ndim, 3))]
    leading = [draw(st.integers(1, 2)) for _ in range(max(ndim - 3, 0))]
    return (*leading, *spatial)


@st.composite
def windows(draw, ndim: int, footprint: bool):
    """A size or footprint (random array or named), and an origin inside it."""
    n = len(spatial_axes(ndim))
    if footprint and draw(st.booleans()):
        if draw(st.booleans()):
            text = draw(
                st.sampled_from(["ball:1", "ball:1.5", "cross", "cross:2", "box:2"])
            )
            window, lengths = {"footprint": text}, named(text, n).shape
        else:
            lengths = tuple(draw(st.integers(1, 5)) for _ in range(n))
            cells = draw(
                st.lists(
                    st.booleans(),
                    min_size=math.prod(lengths),
                    max_size=math.prod(lengths),
                )
            )
            array = np.array(cells, bool).reshape(lengths)
            array.flat[draw(st.integers(0, array.size - 1))] = True
            window = {"footprint": array.tolist()}
    else:
        lengths = tuple(draw(st.integers(1, 5)) for _ in range(n))
        window = {"size": lengths if draw(st.booleans()) else lengths[0]}
        if isinstance(window["size"], int):
            lengths = (lengths[0],) * n
    origin = tuple(draw(st.integers(-(k // 2), (k - 1) // 2)) for k in lengths)
    one = len(set(origin)) == 1 and draw(st.booleans())
    window["origin"] = origin[0] if one else origin
    return window, lengths


def _argument(data, name: str, count: int):
    if name == "rank_filter":
        return data.draw(st.integers(-count, count - 1))
    if name == "percentile_filter":
        return data.draw(st.sampled_from([0, 10, 17, 35, 50, 83.5, 100, -20, -100]))
    return None


@exact_settings(80)
@given(
    data=st.data(),
    shape=shapes_1d_to_5d(),
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from((*ORDER, "uniform")),
    mode=st.sampled_from(ops.MODES),
    cval=st.sampled_from([0.0, 2.5, -7.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_window_filters_equal_scipy(data, shape, dtype, name, mode, cval, seed):
    x = make_volume(shape, dtype, seed, data.draw(st.sampled_from(["full", "few"])))
    window, lengths = data.draw(windows(x.ndim, footprint=name != "uniform"))
    footprint = window.get("footprint")
    if footprint is None:
        count = int(np.prod(lengths))
    elif isinstance(footprint, str):
        count = int(named(footprint, len(lengths)).sum())
    else:
        count = int(np.sum(footprint))
    arg = _argument(data, name, count)
    op = build(name, arg, mode=mode, cval=cval, **window)
    ref_window = dict(window)
    if ref_window.get("footprint") is not None and not isinstance(footprint, str):
        ref_window["footprint"] = np.array(footprint, bool)
    expected = reference(name, x, arg, mode=mode, cval=cval, **ref_window)
    exact = name != "uniform" or x.dtype.kind != "f"
    assert_chunked(op, x, expected, [data.draw(layouts(x.shape))], exact=exact)
    # A region of it, as a preview computes it.
    start = [data.draw(st.integers(0, n - 1)) for n in x.shape]
    stop = [
        data.draw(st.integers(a + 1, n)) for a, n in zip(start, x.shape, strict=False)
    ]
    region = tuple(slice(a, b) for a, b in zip(start, stop, strict=False))
    assert_same(chunkwise.compute_region(x, op, region), expected[region], exact=exact)


@exact_settings(40)
@given(
    data=st.data(),
    x=st.integers(1, 200).flatmap(
        lambda n: st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)
    ),
    size=st.integers(1, 50),
    mode=st.sampled_from(["constant", "mirror", "wrap", "reflect", "nearest"]),
)
def test_1d_median_resilience_grid(data, x, size, mode):
    # scipy's gh-22586 property test: 1D float64 of any length, any window.
    x = np.array(x, np.float64)
    op = ops.median(size, mode=mode)
    expected = ndimage.median_filter(x, size=size, mode=mode)
    assert_chunked(op, x, expected, [data.draw(layouts(x.shape)), ((1,), (3,))])


# scipy's test_filters.py grids (arrays and parameters; scipy gives the answers).

LINE_A = np.array([1, 2, 3, 4, 5])
LINE_B = np.array([3, 2, 5, 1, 4])
PLANE_A = np.array([[3, 2, 5, 1, 4], [5, 8, 3, 7, 1], [5, 6, 9, 3, 5]])
PLANE_B = np.array([[3, 2, 5, 1, 4], [7, 6, 9, 3, 5], [5, 8, 3, 7, 1]])
SPARSE = [[1, 0, 1], [0, 1, 0]]
SKEWED = [[1, 0, 1], [1, 1, 0]]
SCIPY_CASES = [
    # test_rank01..08: sizes, negative ranks, percentiles
    ("rank_filter", LINE_A, 1, {"size": 2}),
    ("percentile_filter", LINE_A, 100, {"size": 2}),
    ("median", LINE_A, None, {"size": 2}),
    ("rank_filter", LINE_A, 1, {"size": (3,)}),
    ("percentile_filter", LINE_A, 50, {"size": 3}),
    ("median", LINE_A, None, {"size": (3,)}),
    ("rank_filter", LINE_B, 1, {"size": (2,)}),
    ("percentile_filter", LINE_B, 100, {"size": 2}),
    ("rank_filter", LINE_B, 1, {"size": 3}),
    ("percentile_filter", LINE_B, 50, {"size": 3}),
    ("median", LINE_B, None, {"size": 3}),
    ("rank_filter", LINE_B, -2, {"size": 3}),
    ("rank_filter", PLANE_A, 1, {"size": (2, 3)}),
    ("percentile_filter", PLANE_A, 17, {"size": (2, 3)}),
    ("rank_filter", PLANE_A, -2, {"size": (2, 3)}),
    ("percentile_filter", PLANE_A, 50.0, {"size": (2, 3)}),
    ("rank_filter", PLANE_A, 3, {"size": (2, 3)}),
    ("median", PLANE_A, None, {"size": (2, 3)}),
    # test_rank09..15: footprints and origins
    ("rank_filter", PLANE_A, 1, {"footprint": SPARSE}),
    ("percentile_filter", PLANE_A, 35, {"footprint": SPARSE}),
    ("rank_filter", PLANE_B, 0, {"footprint": SKEWED}),
    ("percentile_filter", PLANE_B, 0.0, {"footprint": SKEWED}),
    ("rank_filter", PLANE_B, -1, {"footprint": SKEWED}),
    ("percentile_filter", PLANE_B, 100.0, {"footprint": SKEWED}),
    ("percentile_filter", PLANE_A, 50.0, {"footprint": SPARSE}),
    ("median", PLANE_A, None, {"footprint": SPARSE}),
    ("rank_filter", PLANE_A, 1, {"footprint": SPARSE, "origin": -1}),
    ("rank_filter", PLANE_A, 1, {"footprint": SPARSE, "origin": (-1, 0)}),
    ("rank_filter", PLANE_A, 0, {"footprint": SPARSE, "origin": (-1, 0)}),
    # test_minimum_filter01..09 and test_maximum_filter01..09
    *(
        (name, array, None, params)
        for name in ("minimum", "maximum")
        for array, params in [
            (LINE_A, {"size": 2}),
            (LINE_A, {"size": 3}),
            (LINE_B, {"size": 2}),
            (LINE_B, {"size": 3}),
            (PLANE_B, {"size": (2, 3)}),
            (PLANE_B, {"footprint": [[1, 1, 1], [1, 1, 1]]}),
            (PLANE_B, {"footprint": [[1, 1, 1], [1, 1, 1]], "mode": ("reflect",) * 2}),
            (PLANE_B, {"footprint": SKEWED}),
            (PLANE_B, {"footprint": SKEWED, "origin": -1}),
            (PLANE_B, {"footprint": SKEWED, "origin": (-1, 0)}),
        ]
    ),
    # test_valid_origins2: a window of 3 takes origins -1..1
    *(
        (name, LINE_A.astype(float), None, {"size": 3, "origin": origin})
        for name in ("uniform", "minimum", "maximum", "median")
        for origin in (-1, 1)
    ),
    # test_gh_23075, test_median_filter_lim2: windows longer than the line
    *(
        ("median", np.array(samples, np.float32), None, {"size": size, "mode": mode})
        for samples, mode, size in [
            ([1, 2], "reflect", 5),
            *(
                ([2], m, s)
                for s in (5, 1, 50)
                for m in ("reflect", "nearest", "wrap", "mirror", "constant")
            ),
        ]
    ),
    ("median", np.ones(8), None, {"size": 19, "mode": "reflect"}),
    *(
        (
            "median",
            np.array([v], np.float32),
            None,
            {"size": s, "mode": "constant", "cval": c},
        )
        for v, s, c in [(2, 5, 17.7), (2, 1, 0.0), (9, 101, -7807.7)]
    ),
]


def _case_id(case) -> str:
    name, array, arg, params = case
    return f"{name}-{array.shape}-{arg}-{params}"


@pytest.mark.parametrize("case", SCIPY_CASES, ids=map(_case_id, SCIPY_CASES))
def test_scipy_test_filters_grid(case):
    name, array, arg, params = case
    op = build(name, arg, **params)
    scipy_params = dict(params)
    if "footprint" in scipy_params:
        scipy_params["footprint"] = np.array(scipy_params["footprint"], bool)
    expected = reference(name, array, arg, **scipy_params)
    chunkings = [((1,) * array.ndim, (1,) * array.ndim), ((2,) * array.ndim,) * 2]
    assert_chunked(op, array, expected, chunkings)


@pytest.mark.parametrize("name", ["uniform", "minimum", "maximum"])
@pytest.mark.parametrize(
    "modes",
    [
        ("reflect", "reflect"),
        ("reflect", "wrap"),
        ("wrap", "constant"),
        ("grid-wrap", "mirror"),
    ],
)
def test_scipy_multiple_modes_grid(name, modes):
    # test_multiple_modes(_sequentially), test_multiple_modes_uniform: size 5 on 3x3.
    arr = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    op = build(name, None, size=5, mode=modes)
    expected = SCIPY[name](arr, 5, mode=modes)
    exact = name != "uniform"
    assert_chunked(op, arr, expected, [((1, 1), (1, 1)), ((2, 1), (2, 2))], exact=exact)
    # And per axis on an integer volume (exact), with chunks smaller than the halo.
    x = make_volume((9, 10, 11), "uint16", 4)
    three = (modes[0], modes[1], "nearest")
    op = build(name, None, size=(3, 5, 4), mode=three, cval=3.0)
    expected = SCIPY[name](x, (3, 5, 4), mode=three, cval=3.0)
    assert_chunked(op, x, expected, [((1, 2, 1), (2, 2, 3)), ((4, 3, 5), (4, 3, 5))])


def test_mode_sequences_are_refused_where_scipy_refuses_them():
    for name, arg in [("median", None), ("rank_filter", 3), ("percentile_filter", 50)]:
        with pytest.raises(chunkwise.ChunkwiseError, match="one mode") as error:
            build(name, arg, size=(2, 3), mode=("reflect", "constant"))
        assert "\n" not in str(error.value)
    for name in ("minimum", "maximum"):
        op = build(name, None, footprint=SKEWED, mode=("reflect", "reflect"))
        with pytest.raises(chunkwise.ChunkwiseError, match="one mode"):
            op(PLANE_B)
        # A footprint that is a full box is separable: scipy takes the sequence.
        op = build(name, None, footprint="box:3", mode=("reflect", "wrap"))
        expected = SCIPY[name](PLANE_B, 3, mode=("reflect", "wrap"))
        assert_chunked(op, PLANE_B, expected, [((1, 2), (1, 2))])


@pytest.mark.parametrize("name", ORDER)
@pytest.mark.parametrize(
    ("axes", "footprint", "origin", "arg"),
    [
        # test_minmax_nonseparable_axes: a triangle on two of three axes
        *(((a, b), np.tri(5), 0, {"rank_filter": 3, "percentile_filter": 60})
          for a, b in [(0, 1), (0, 2), (1, 2)]),
        # test_filter_weights_subset_axes_origins: a notched 3 x 5, shifted
        ((1, 2), np.ones((3, 5)) - np.eye(3, 5, 1), (0, 1),
         {"rank_filter": 1, "percentile_filter": 30}),
    ],
)  # fmt: skip
def test_scipy_footprints_on_two_of_three_axes(name, axes, footprint, origin, arg):
    # scipy's ``axes`` is chunkwise's on_axes: the others are filtered apart.
    array = np.arange(6 * 8 * 12, dtype=np.float32).reshape(6, 8, 12)
    arg = arg.get(name)
    op = ops.on_axes(
        build(name, arg, footprint=footprint.tolist(), origin=origin), axes
    )
    args = () if arg is None else (arg,)
    expected = SCIPY[name](
        array, *args, footprint=footprint.astype(bool), origin=origin, axes=axes
    )
    chunkings = [((1, 1, 1), (2, 3, 4)), ((6, 3, 5), (6, 3, 5))]
    assert_chunked(op, array, expected, chunkings)


# dask-image's test__order.py and test__smooth.py grids (on their 10 x 14 ramp).

RAMP = np.arange(140.0).reshape(10, 14)
#: dask-image's shared (size, footprint, origin) grid of its order-filter tests, as
#: nested lists, and the identity cases of ``test_ordered_filter_identity``.
DASK_ORDER_CASES = [
    (size, None if footprint is None else np.asarray(footprint).tolist(), origin)
    for size, footprint, origin in GENERIC_GRID
] + [
    # test_ordered_filter_identity
    (1, None, 0),
    ((1, 1), None, 0),
    (None, [[1.0]], 0),
]
ORDER_ARGS = {"rank_filter": 1, "percentile_filter": 10}


@pytest.mark.parametrize("name", ORDER)
@pytest.mark.parametrize(("size", "footprint", "origin"), DASK_ORDER_CASES)
def test_dask_image_order_grid(name, size, footprint, origin):
    arg = ORDER_ARGS.get(name)
    if size in (1, (1, 1)) or footprint == [[1.0]]:
        arg = 0 if arg is not None else None  # the identity cases use rank 0
    kwargs = {"origin": origin}
    kwargs |= {"size": size} if footprint is None else {"footprint": footprint}
    op = build(name, arg, **kwargs)
    if footprint is not None:
        kwargs["footprint"] = np.array(footprint, bool)
    expected = reference(name, RAMP, arg, **kwargs)
    assert_chunked(op, RAMP, expected, CHUNKINGS_2D)


@pytest.mark.parametrize(
    ("size", "origin"),
    [(1, 0), (2, 0), (3, 0), (3, 1), (3, (1, 0)), ((1, 2), 0), ((3, 2), (1, 0))],
)
def test_dask_image_uniform_grid(size, origin):
    x = np.arange(100.0 * 110).reshape(100, 110)
    op = ops.uniform(size, origin=origin)
    expected = ndimage.uniform_filter(x, size, origin=origin)
    chunkings = [((50, 55), (50, 55)), ((7, 9), (14, 9)), ((1, 110), (3, 110))]
    assert_chunked(op, x, expected, chunkings, exact=False)


@pytest.mark.parametrize("name", ORDER)
@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"size": (1,)}, "size has 1 values"),
        ({"size": 1, "footprint": [[1]]}, "size or footprint"),
        ({"footprint": [1]}, "footprint has 1 dimensions"),
        ({"footprint": [[]]}, "footprint"),
        ({"footprint": [[0, 0], [0, 0]]}, "at least one"),
        ({"footprint": [[1, 2]]}, "footprint must hold"),
        ({"footprint": "disc:2"}, "footprint 'disc:2'"),
        ({"footprint": "ball:-1"}, "radius"),
        ({"footprint": "box:0"}, "box width"),
        ({"size": 1, "origin": (0,)}, "origin has 1 values"),
        ({"size": 1, "origin": 1}, "origin 1"),
        ({"size": 3, "origin": 2}, "origin 2"),
        ({"size": 3, "origin": 1 + 0j}, "origin"),
        ({"size": 3, "origin": 0.5}, "origin"),
        ({"size": 2.5}, "size"),
    ],
)
def test_bad_windows_are_one_line_errors(name, params, word):
    # dask-image's test_order_filter_params and scipy's test_footprint_all_zeros,
    # test_valid_origins1: each refused, in one line naming the parameter.
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        build(name, ORDER_ARGS.get(name), **params)(RAMP)
    assert word in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("op", "word"),
    [
        (lambda: ops.rank_filter(0.5, 3), "rank"),
        (lambda: ops.rank_filter(9, 3), "rank 9"),
        (lambda: ops.rank_filter(-10, 3), "rank -10"),
        (lambda: ops.rank_filter(5, footprint="cross"), "rank 5"),
        (lambda: ops.percentile_filter(101, 3), "percentile"),
        (lambda: ops.percentile_filter(-100.5, 3), "percentile"),
        (lambda: ops.median(footprint="ball:70"), "footprint ball:70 needs"),
        # test_gh_23075_constant's window of 137 on a line of 1: past the reach
        # refused for any kernel (more than twice the axis and 64 voxels).
        (lambda: ops.median(137, mode="constant"), "size 137 needs"),
    ],
)
def test_bad_ranks_and_huge_footprints_are_one_line_errors(op, word):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        op()(PLANE_A)
    assert word in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(chunkwise.ChunkwiseError, match="at most 10,000,000"):
        ops.median(footprint="ball:200")(np.zeros((1, 1, 1), bool))


# Origins and footprints wider than chunks, on a volume.


@pytest.mark.parametrize("mode", ops.MODES)
@pytest.mark.parametrize(
    ("name", "arg", "window"),
    [
        ("rank_filter", -3, {"footprint": "ball:2", "origin": (2, -1, 0)}),
        ("percentile_filter", 30, {"footprint": "cross:2", "origin": 2}),
        ("median", None, {"size": (5, 1, 4), "origin": (-2, 0, 1)}),
        ("minimum", None, {"footprint": "ball:1.5", "origin": (1, 1, -1)}),
        ("maximum", None, {"size": 5, "origin": (2, -2, 0)}),
        ("uniform", None, {"size": (4, 5, 3), "origin": (1, -2, 1)}),
    ],
    ids=[
        "rank-ball",
        "percentile-cross",
        "median",
        "minimum-ball",
        "maximum",
        "uniform",
    ],
)
def test_origins_reach_across_chunks_of_one(mode, name, arg, window):
    x = make_volume((7, 9, 8), "int16", 8, "few")
    op = build(name, arg, mode=mode, cval=-2.0, **window)
    expected = reference(name, x, arg, mode=mode, cval=-2.0, **window)
    chunkings = [((1, 1, 1), (1, 2, 3)), ((2, 3, 2), (4, 3, 2)), ((7, 9, 8),) * 2]
    assert_chunked(op, x, expected, chunkings, exact=name != "uniform")


def test_4d_and_5d_footprints_filter_each_volume_apart():
    x = make_volume((2, 2, 5, 6, 7), "float32", 9)
    op = ops.rank_filter(2, footprint="ball:1", mode="wrap", origin=(0, 1, -1))
    expected = np.empty_like(x)
    for t in range(2):
        for c in range(2):
            expected[t, c] = ndimage.rank_filter(
                x[t, c], 2, footprint=named("ball:1", 3), mode="wrap", origin=(0, 1, -1)
            )
    assert_chunked(op, x, expected, [((1, 1, 2, 2, 3), (1, 2, 2, 4, 3))])
    assert_chunked(op, x[0], expected[0], [((1, 1, 2, 2), (2, 1, 4, 2))])


# 1D arrays through every filter, and empty arrays.

FILTERS_1D = [
    (ops.median(4, mode="wrap"), lambda x: ndimage.median_filter(x, 4, mode="wrap")),
    (
        ops.rank_filter(-2, 5, origin=1),
        lambda x: ndimage.rank_filter(x, -2, 5, origin=1),
    ),
    (
        ops.percentile_filter(25, footprint=[1, 0, 1, 1], mode="mirror"),
        lambda x: ndimage.percentile_filter(
            x, 25, footprint=[1, 0, 1, 1], mode="mirror"
        ),
    ),
    (ops.minimum(footprint="ball:2"), lambda x: ndimage.minimum_filter(x, 5)),
    (
        ops.maximum(3, mode="constant", cval=50),
        lambda x: ndimage.maximum_filter(x, 3, mode="constant", cval=50),
    ),
    (
        ops.uniform(3, mode="nearest"),
        lambda x: ndimage.uniform_filter(x, 3, mode="nearest"),
    ),
    (
        ops.gaussian(2, mode="wrap"),
        lambda x: ndimage.gaussian_filter(x, 2, mode="wrap"),
    ),
    (
        ops.gradient_magnitude(1.5),
        lambda x: ndimage.gaussian_gradient_magnitude(x, 1.5),
    ),
    (ops.laplace_of_gaussian(1.0), lambda x: ndimage.gaussian_laplace(x, 1.0)),
]


@pytest.mark.parametrize(("op", "scipy_filter"), FILTERS_1D, ids=lambda v: str(v)[:40])
def test_1d_arrays_through_the_engine(tmp_path, op, scipy_filter):
    x = make_volume((61,), "uint16", 10)
    expected = scipy_filter(x)
    assert_chunked(op, x, expected, [((1,), (1,)), ((7,), (14,)), ((61,), (61,))])
    path = tmp_path / "line.zarr"
    zarr.create_array(path, data=x, chunks=(8,))
    out = chunkwise.process(path, op, tmp_path / "out.zarr", chunks=(5,), n_jobs=2)
    assert_same(out[:], expected)
    assert_same(chunkwise.compute_region(path, op, np.s_[3:40]), expected[3:40])


def test_1d_ome_zarr_output_is_refused_in_one_line(tmp_path):
    with pytest.raises(chunkwise.ChunkwiseError, match="2 to 5 axes") as error:
        chunkwise.process(np.zeros(9, np.uint8), ops.median(3), tmp_path / "o.ome.zarr")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 5), (2, 3, 0, 4)])
@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_empty_arrays_give_empty_results(shape, mode):
    x = np.zeros(shape, np.uint16)
    for name in (*ORDER, "uniform"):
        arg = ORDER_ARGS.get(name)
        op = build(name, arg, mode=mode)
        expected = reference(name, x, arg, size=3, mode=mode)
        assert_same(op(x), expected)
    # The engine writes no empty array: one line saying so.
    with pytest.raises(chunkwise.ChunkwiseError, match="empty") as error:
        chunkwise.process(x, ops.median(3, mode=mode))
    assert "\n" not in str(error.value)


def test_0d_arrays_are_refused_in_one_line():
    with pytest.raises(chunkwise.ChunkwiseError, match="0 dimensions"):
        ops.median(3)(np.zeros((), np.uint8))


# Records: provenance, resume and the command line.

ROUND_TRIP = [
    ops.rank_filter(-1, (3, 1, 5), mode="wrap", origin=(1, 0, -2)),
    ops.percentile_filter(-20.5, footprint="ball:1.5", cval=3, mode="constant"),
    ops.median(footprint=[[[0, 1], [1, 1]]]),
    ops.minimum(footprint="cross", origin=-1),
    ops.maximum(4, mode=("wrap", "reflect", "grid-mirror")),
    ops.uniform((3, 4, 5), origin=(1, 0, 0), mode=("nearest", "wrap", "constant")),
]


@pytest.mark.parametrize("op", ROUND_TRIP, ids=lambda op: op.name)
def test_records_round_trip(op):
    record = json.loads(json.dumps(op.to_dict()))
    assert ops.from_dict(record) == op
    assert hash(ops.from_dict(record)) == hash(op)


@pytest.mark.parametrize(
    ("text", "op"),
    [
        (
            "rank_filter:rank=-2,footprint=ball:2,mode=wrap",
            ops.rank_filter(-2, footprint="ball:2", mode="wrap"),
        ),
        (
            "median:footprint=[[0,1,0],[1,1,1],[0,1,0]],mode=nearest",
            ops.median(footprint=[[0, 1, 0], [1, 1, 1], [0, 1, 0]], mode="nearest"),
        ),
        (
            "percentile_filter:percentile=75,size=3/1/5,origin=1/0/-2",
            ops.percentile_filter(75, (3, 1, 5), origin=(1, 0, -2)),
        ),
        (
            "maximum:size=5,mode=wrap/reflect/nearest",
            ops.maximum(5, mode=("wrap", "reflect", "nearest")),
        ),
        ("minimum:footprint=cross:2,cval=4", ops.minimum(footprint="cross:2", cval=4)),
        (
            "median:footprint=[[[true, false]], [[true, true]]]",
            ops.median(footprint=[[[1, 0]], [[1, 1]]]),
        ),
    ],
)
def test_text_parses_to_the_operation(text, op):
    assert ops.parse(text) == op


def test_a_npy_footprint_is_recorded_as_its_values(tmp_path):
    footprint = np.array([[[0, 1, 0], [1, 1, 1]]], bool)
    np.save(tmp_path / "fp.npy", footprint)
    op = ops.parse(f"rank_filter:rank=1,footprint={tmp_path / 'fp.npy'}")
    assert op == ops.rank_filter(1, footprint=footprint.tolist())
    (tmp_path / "fp.npy").unlink()  # the record does not depend on the file
    assert ops.from_dict(json.loads(json.dumps(op.to_dict()))) == op
    x = make_volume((6, 7, 8), "uint8", 12)
    expected = ndimage.rank_filter(x, 1, footprint=footprint)
    assert_chunked(op, x, expected, [((2, 3, 2), (2, 3, 4))])
    with pytest.raises(chunkwise.ChunkwiseError, match="cannot read"):
        ops.median(footprint=str(tmp_path / "missing.npy"))


def test_cli_rank_filter_with_a_named_footprint(tmp_path, capsys):
    data = make_volume((20, 24, 18), "uint16", 13)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(8, 8, 8))
    out = tmp_path / "out.zarr"
    spec = "rank_filter:rank=-3,footprint=ball:2,mode=wrap,origin=1/0/-1"
    argv = ["run", str(path), str(out), "--op", spec, "-j", "2", "--chunks", "4,5,3"]
    assert main(argv) == 0
    expected = ndimage.rank_filter(
        data, -3, footprint=named("ball:2", 3), mode="wrap", origin=(1, 0, -1)
    )
    assert_same(zarr.open_array(out, mode="r")[:], expected)
    assert f"wrote {out}" in capsys.readouterr().out
    bad = [
        "run",
        str(path),
        str(tmp_path / "bad.zarr"),
        "--op",
        "median:footprint=egg:2",
    ]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "footprint 'egg:2'" in err


def test_records_of_earlier_versions_are_unchanged():
    # Resume compares records: a window filter without footprint or origin is
    # recorded as before those parameters existed, so its unfinished runs resume.
    for name in ("median", "uniform", "minimum", "maximum"):
        before = {"op": name, "mode": "reflect", "cval": 0.0, "size": 3}
        assert build(name, None).to_dict() == before
        assert ops.from_dict(before) == build(name, None)
