"""Downsampling conventions: by their definitions, and bit for bit against the peers.

The peers' conventions (tensorstore's ``downsample``, ome-zarr-py's and ngff-zarr's
pyramids) are asked for with `downsample`'s parameters; the peers themselves are the
references, run live on the same arrays. Their own test grids are ported as facts:
tensorstore's ``downsample_array_test.cc`` inputs and ome-zarr-py's
``test_build_pyramid`` shapes and scale factors.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

import chunkwise
from chunkwise import ChunkwiseError, ops
from conftest import exact_settings, layouts, make_volume, processed, volumes

#: What asks for tensorstore's conventions; its integer rounding is the default.
TENSORSTORE = {"median": "lower", "bool_rule": "half_even", "accumulate": "input"}
TS_METHODS = {
    "mean": "mean",
    "median": "median",
    "mode": "mode",
    "min": "min",
    "max": "max",
    "nearest": "stride",
}
DTYPES = ("uint8", "uint16", "int16", "float32", "bool")


def _volume(shape, dtype, seed: int, values: str = "full") -> np.ndarray:
    if dtype == "bool":
        rng = np.random.default_rng(seed)
        return rng.random(shape) < (0.5 if values == "full" else 0.2)
    return make_volume(shape, dtype, seed, values)


def _spatial(value, ndim: int, neutral: int) -> tuple[int, ...]:
    """A per-spatial-axis parameter for every axis of an ``ndim`` array."""
    n = min(ndim, 3)
    given = value if isinstance(value, tuple) else (value,) * n
    return (neutral,) * (ndim - n) + tuple(given)


def _layouts(shape) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Output chunkings: chunks of 1 (small outputs), chunks that divide nothing."""
    odd = tuple(min(n, 3) for n in shape)
    half = tuple(max(1, n // 2 + 1) for n in shape)
    found = [(odd, tuple(2 * c for c in odd)), (half, half)]
    if math.prod(shape) <= 64:
        ones = (1,) * len(shape)
        found.insert(0, (ones, tuple(min(n, 2) for n in shape)))
    return found


# By definition: a loop over windows, exact arithmetic for the blends.


def _blend(value: Fraction, dtype: np.dtype, op: ops.downsample):
    if dtype.kind == "b":
        return (round(value) if op.bool_rule == "half_even" else value) != 0
    return round(value) if op.rounding == "half_even" else int(value)  # int truncates


def _mode(values: list):
    counts = Counter(values)
    most = max(counts.values())
    return min(v for v, c in counts.items() if c == most)


def _float_mean(values: np.ndarray, op: ops.downsample):
    if op.accumulate == "float64":
        return math.fsum(values.tolist()) / values.size  # rounded once; see below
    kind = values.dtype.type
    total = values[0]
    for value in values[1:]:
        total = kind(total + value)
    return kind(total / kind(values.size))


def _reduce(window: np.ndarray, op: ops.downsample, offsets: tuple[int, ...]):
    if op.method == "nearest":
        return window[
            tuple(min(o, n - 1) for o, n in zip(offsets, window.shape, strict=True))
        ]
    values = window.ravel()
    ordered = sorted(values.tolist())
    exact = window.dtype.kind != "f"
    if op.method in ("min", "max", "mode"):
        return {"min": min, "max": max, "mode": _mode}[op.method](ordered)
    if op.method == "median":
        low, high = ordered[(len(ordered) - 1) // 2], ordered[len(ordered) // 2]
        if op.median == "lower" or low == high:
            return low
        if exact:
            return _blend(Fraction(int(low) + int(high), 2), window.dtype, op)
        return (low + high) / 2  # halves of floats are exact in float64
    if exact:
        return _blend(
            Fraction(sum(int(v) for v in ordered), values.size), window.dtype, op
        )
    return _float_mean(values, op)


def by_definition(x: np.ndarray, op: ops.downsample) -> np.ndarray:
    factors = _spatial(op.factor, x.ndim, 1)
    offsets = _spatial(op.offset, x.ndim, 0)
    shape = tuple(-(-n // k) for n, k in zip(x.shape, factors, strict=True))
    out = np.empty(shape, x.dtype)
    for index in np.ndindex(shape):
        box = tuple(
            slice(i * k, (i + 1) * k) for i, k in zip(index, factors, strict=True)
        )
        out[index] = _reduce(x[box], op, offsets)
    return out


def _assert_by_definition(result: np.ndarray, x: np.ndarray, op) -> None:
    expected = by_definition(x, op)
    assert result.shape == expected.shape
    if op.method == "mean" and x.dtype.kind == "f" and op.accumulate == "float64":
        # A float64 sum in numpy's order against fsum: equal to within its rounding.
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-5)
    else:
        np.testing.assert_array_equal(result, expected, strict=True)


@st.composite
def _cases(draw):
    x = draw(
        st.one_of(
            volumes(max_side=12, dtypes=("uint8", "uint16", "int16", "float32")),
            st.builds(
                _volume,
                st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
                st.just("bool"),
                st.integers(0, 2**32 - 1),
                st.sampled_from(["full", "few"]),
            ),
        )
    )
    factor = draw(st.one_of(st.integers(1, 4), st.tuples(*[st.integers(1, 4)] * 3)))
    if x.ndim == 2 and isinstance(factor, tuple):
        factor = factor[1:]
    method = draw(st.sampled_from(ops.DOWNSAMPLE_METHODS))
    offset = 0
    if method == "nearest":
        ks = factor if isinstance(factor, tuple) else (factor,) * min(x.ndim, 3)
        offset = tuple(draw(st.integers(0, k - 1)) for k in ks)
    op = ops.downsample(
        factor,
        method,
        rounding=draw(st.sampled_from(["half_even", "toward_zero"])),
        bool_rule=draw(st.sampled_from(["nonzero", "half_even"])),
        median=draw(st.sampled_from(["average", "lower"])),
        offset=offset,
        accumulate=draw(st.sampled_from(["float64", "input"])),
    )
    return x, op


@exact_settings(80)
@given(data=st.data(), case=_cases())
def test_every_convention_is_its_definition_in_every_chunking(data, case):
    x, op = case
    result = op(x)
    assert result.dtype == x.dtype
    _assert_by_definition(result, x, op)
    chunked = processed(x, op, data.draw(layouts(result.shape)))
    np.testing.assert_array_equal(chunked, result, strict=True)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "bool"])
@pytest.mark.parametrize("method", ops.DOWNSAMPLE_METHODS)
def test_chunks_of_one_voxel(dtype, method):
    x = _volume((11, 13), dtype, seed=5)
    conventions = TENSORSTORE | ({"offset": (1, 2)} if method == "nearest" else {})
    for op in (
        ops.downsample((2, 3), method),
        ops.downsample((2, 3), method, **conventions),
    ):
        result = op(x)
        _assert_by_definition(result, x, op)
        for layout in (((1, 1), (1, 1)), ((1, 1), (2, 3))):
            np.testing.assert_array_equal(processed(x, op, layout), result, strict=True)


# The conventions by hand, on lines of windows: (1, n) arrays with factor (1, k).


def _line(values, dtype) -> np.ndarray:
    return np.array([values], dtype)


@pytest.mark.parametrize(
    ("rounding", "dtype", "values"),
    [
        ("half_even", "uint8", [1, 2, 2, 3, 5, 6]),  # 1.5, 2.5, 5.5
        ("toward_zero", "uint8", [1, 2, 2, 3, 5, 6, 7]),
        ("toward_zero", "int16", [-1, -2, -2, -3, 4, -9]),  # -1.5, -2.5, -2.5
        ("half_even", "int16", [-1, -2, -2, -3, 4, -9]),
    ],
)
def test_integer_mean_rounding(rounding, dtype, values):
    op = ops.downsample((1, 2), rounding=rounding)
    result = op(_line(values, dtype))
    _assert_by_definition(result, _line(values, dtype), op)
    sums = np.add.reduceat(np.array(values, np.int64), range(0, len(values), 2))
    counts = np.diff([*range(0, len(values), 2), len(values)])
    quotient = sums / counts
    expected = np.rint(quotient) if rounding == "half_even" else np.trunc(quotient)
    np.testing.assert_array_equal(result[0], expected.astype(dtype), strict=True)


@pytest.mark.parametrize("method", ["mean", "median"])
def test_bool_rule(method):
    # Windows of 4 with 0, 1, 2, 3 and 4 True voxels; a partial window of 1.
    x = _line([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1], bool)
    counts = np.add.reduceat(x[0].astype(int), range(0, x.shape[1], 4))
    sizes = np.diff([*range(0, x.shape[1], 4), x.shape[1]])
    nonzero = ops.downsample((1, 4), method, bool_rule="nonzero")(x)[0]
    half_even = ops.downsample((1, 4), method, bool_rule="half_even")(x)[0]
    # A tie is the mean 1/2 and the average median: True where non-zero only.
    majority = 2 * counts > sizes
    tie = 2 * counts == sizes
    np.testing.assert_array_equal(half_even, majority)
    np.testing.assert_array_equal(
        nonzero, counts > 0 if method == "mean" else majority | tie
    )
    if method == "median":  # the lower middle value rounds nothing: a tie is False
        lower = ops.downsample((1, 4), method, median="lower")(x)[0]
        np.testing.assert_array_equal(lower, majority)


def test_even_window_median_lower_or_average():
    x = _line([100, 3, 1, 2, 99, 98, 97, 5, 7, 8], "float32")
    average = ops.downsample((1, 4), "median")(x)[0]
    lower = ops.downsample((1, 4), "median", median="lower")(x)[0]
    for i, window in enumerate(np.split(x[0], [4, 8])):
        ordered = np.sort(window)
        low, high = ordered[(len(window) - 1) // 2], ordered[len(window) // 2]
        assert lower[i] == low
        assert average[i] == np.float32((float(low) + float(high)) / 2)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_nearest_offset_takes_that_voxel_of_each_window(k):
    x = _line(np.arange(11) * 10, "int16")
    for offset in range(k):
        result = ops.downsample((1, k), "nearest", offset=(0, offset))(x)[0]
        starts = np.arange(0, 11, k)
        # The far edge's partial window gives its last voxel when it is too short.
        np.testing.assert_array_equal(result, x[0][np.minimum(starts + offset, 10)])


def test_lower_median_keeps_labels_and_the_average_does_not():
    rng = np.random.default_rng(2)
    labels = rng.choice(np.array([0, 7, 300, 1201], np.uint16), (12, 14, 10))
    lower = ops.downsample(2, "median", median="lower")
    average = ops.downsample(2, "median")
    assert lower.labels is ops.LabelEffect.KEEPS and lower.labels_from(True)
    assert average.labels is ops.LabelEffect.DROPS
    result = chunkwise.process(labels, lower, chunks=(3, 4, 5), n_jobs=2)[:]
    assert set(np.unique(result).tolist()) <= {0, 7, 300, 1201}
    assert not set(np.unique(average(labels)).tolist()) <= {0, 7, 300, 1201}


# Parameters: checked where they enter, recorded, and resumable.


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"rounding": "up"}, "rounding"),
        ({"bool_rule": "any"}, "bool_rule"),
        ({"median": "upper"}, "median"),
        ({"accumulate": "float32"}, "accumulate"),
        ({"method": "nearest", "offset": 2}, "offset"),
        ({"method": "nearest", "offset": -1}, "offset"),
        ({"method": "nearest", "offset": 0.5}, "offset"),
        ({"method": "nearest", "factor": (2, 2, 2), "offset": (0, 1)}, "offset"),
        ({"method": "nearest", "factor": (2, 3, 1), "offset": (1, 2, 1)}, "offset"),
        ({"method": "mean", "offset": 1}, "offset"),
    ],
)
def test_bad_conventions_are_one_line_errors_naming_them(kwargs, named):
    with pytest.raises(ChunkwiseError, match=named) as error:
        ops.downsample(**({"factor": 2} | kwargs))
    assert "\n" not in str(error.value)


def test_offset_must_have_a_value_per_spatial_axis():
    op = ops.downsample(3, "nearest", offset=(1, 1, 1))
    with pytest.raises(ChunkwiseError, match="offset has 3 values"):
        op(np.zeros((6, 6), np.uint8))


@pytest.mark.parametrize(
    "op",
    [
        ops.downsample(2),
        ops.downsample((1, 2, 3), "median", median="lower", rounding="toward_zero"),
        ops.downsample(3, "nearest", offset=(0, 1, 2)),
        ops.downsample(2, "mean", bool_rule="half_even", accumulate="input"),
    ],
    ids=repr,
)
def test_records_and_text_round_trip(op):
    assert ops.from_dict(op.to_dict()) == op
    text = ",".join(
        f"{k}={'/'.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in op.params().items()
    )
    assert ops.parse(f"downsample:{text}") == op
    assert eval(repr(op), {"downsample": ops.downsample}) == op


def test_conventions_at_their_defaults_keep_the_records_of_older_runs():
    # Records written before the conventions were parameters had factor and method
    # only; the same operation still writes exactly that, so those runs resume.
    for method in ops.DOWNSAMPLE_METHODS:
        explicit = ops.downsample(
            2, method, rounding="half_even", bool_rule="nonzero", median="average",
            offset=0, accumulate="float64",
        )  # fmt: skip
        assert explicit.to_dict() == {"op": "downsample", "factor": 2, "method": method}
        assert (
            ops.from_dict({"op": "downsample", "factor": 2, "method": method})
            == explicit
        )


def _cancelled(volume, op, out) -> None:
    run = chunkwise.iter_process(volume, op, out, chunks=(4, 4, 4), n_jobs=1)
    next(run)
    run.cancel()
    with pytest.raises(chunkwise.Cancelled):
        for _ in run:
            pass


def test_a_run_resumes_only_under_the_same_conventions(tmp_path):
    volume = np.random.default_rng(4).integers(0, 255, (16, 16, 16), np.uint8)
    out = tmp_path / "out.zarr"
    _cancelled(volume, ops.downsample(2, "median"), out)
    lower = ops.downsample(2, "median", median="lower")
    assert chunkwise.resumable(out, volume, lower) is None
    with pytest.raises(ChunkwiseError, match="different operation"):
        chunkwise.process(volume, lower, out, resume=True)
    explicit = ops.parse("downsample:factor=2,method=median,median=average")
    assert chunkwise.resumable(out, volume, explicit) is not None
    result = chunkwise.process(volume, explicit, out, resume=True)[:]
    np.testing.assert_array_equal(result, ops.downsample(2, "median")(volume))


# tensorstore, live: ts.downsample on the same array.


def _tensorstore(x: np.ndarray, factor, method: str) -> np.ndarray:
    ts = pytest.importorskip("tensorstore", reason="tensorstore is not installed")
    factors = list(_spatial(factor, x.ndim, 1))
    return (
        ts.downsample(ts.array(x), factors, method=TS_METHODS[method]).read().result()
    )


def _assert_like_tensorstore(x: np.ndarray, factor, method: str) -> None:
    expected = _tensorstore(x, factor, method)
    op = ops.downsample(factor, method, **TENSORSTORE)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    for layout in _layouts(expected.shape):
        np.testing.assert_array_equal(processed(x, op, layout), expected, strict=True)


#: The inputs of tensorstore's downsample_array_test.cc whose arrays start at 0
#: (chunkwise arrays always do): values, factors, methods, dtypes. Rank 1 runs as
#: (1, n).
TENSORSTORE_CASES = [
    ([1, 2, 5, 7], (1, 2), "mean", "float32"),
    ([1, 2, 3, 5, 7, 12], (1, 3), "mean", "float32"),
    ([253, 254, 254], (1, 3), "mean", "uint8"),
    ([-253, -254, -254], (1, 3), "mean", "int16"),
    ([3, 3, 2, 2], (1, 4), "mean", "int16"),
    ([3, 3, 4, 4], (1, 4), "mean", "int16"),
    ([-3, -3, -2, -2], (1, 4), "mean", "int16"),
    ([-3, -3, -4, -4], (1, 4), "mean", "int16"),
    ([253, 254, 254], (1, 3), "mean", "uint64"),
    ([0, 0, 1], (1, 3), "mean", "bool"),
    ([0, 1, 1], (1, 3), "mean", "bool"),
    ([0, 1, 1, 0], (1, 4), "mean", "bool"),
    ([1, 2], (1, 2), "mean", "float32"),
    ([1, 2, 5, 7, 9], (1, 2), "mean", "float32"),
    ([1, 2, 6, 7, 9], (1, 3), "mean", "float32"),
    ([1, 2, 5, 7], (1, 1), "mean", "float32"),
    ([[1, 2, 5, 7], [5, 6, 15, 25]], (1, 2), "mean", "float32"),
    ([[1, 2, 5, 7], [5, 6, 15, 25]], (2, 1), "mean", "float32"),
    ([[1, 2, 5, 7], [5, 6, 15, 25]], (2, 2), "mean", "float32"),
    (np.arange(1, 16).reshape(3, 5).tolist(), (2, 2), "mean", "float32"),
    (np.arange(1, 16).reshape(3, 5).tolist(), (2, 3), "median", "float32"),
    (np.arange(1, 16).reshape(3, 5).tolist(), (2, 3), "nearest", "float32"),
    (np.arange(1, 37).reshape(3, 3, 4).tolist(), (2, 2, 2), "mean", "float32"),
    ([2, 3, 5, 1], (1, 2), "min", "float32"),
    ([2, 3, 8, 7, 1, 5], (1, 3), "min", "int32"),
    ([2, 3, 5, 1], (1, 2), "max", "float32"),
    ([2, 3, 8, 7, 1, 5], (1, 3), "max", "int32"),
    ([100, 3, 1, 2, 99, 98, 97, 5], (1, 4), "median", "float32"),
    ([100, 3, 1, 2, 99, 97, 98], (1, 4), "median", "float32"),
    ([100, 99, 99, 99, 3, 3, 2, 2], (1, 4), "mode", "float32"),
    ([100, 99, 99, 99, 3, 3, 2], (1, 4), "mode", "float32"),
    *(
        (values, (1, len(values) - 1 if len(values) == 5 else 4), method, "bool")
        for method in ("mode", "mean", "median")
        for values in ([0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1, 1])
    ),
    ([1, 2, 5, 7], (1, 2), "nearest", "float32"),
    ([0, 2, 3, 9, 1, 5, 7, 3, 4, 0, 5], (1, 2), "mean", "uint8"),
    (
        np.repeat(np.arange(128), 128).reshape(128, 128).tolist(),
        (2, 2),
        "mean",
        "uint8",
    ),
]


@pytest.mark.parametrize(("values", "factor", "method", "dtype"), TENSORSTORE_CASES)
def test_tensorstores_own_cases(values, factor, method, dtype):
    x = np.array(values, dtype)
    _assert_like_tensorstore(x if x.ndim > 1 else x[None], factor, method)


#: Factors 2 and 3, per-axis factors, 2D to 4D, no side a multiple of its factor.
TENSORSTORE_GRID = [
    (2, (13, 17, 11)),
    (3, (10, 14, 8)),
    ((1, 2, 3), (9, 11, 13)),
    ((3, 1, 2), (2, 8, 7, 9)),
    ((2, 3), (23, 19)),
]


@pytest.mark.parametrize("dtype", [*DTYPES, "float64", "int32"])
@pytest.mark.parametrize("method", ops.DOWNSAMPLE_METHODS)
@pytest.mark.parametrize(("factor", "shape"), TENSORSTORE_GRID, ids=str)
def test_tensorstore_on_random_arrays(dtype, method, factor, shape):
    values = "few" if method == "mode" else "full"  # ties for the mode
    x = _volume(
        shape, dtype, seed=zlib.crc32(f"{dtype}{method}{shape}".encode()), values=values
    )
    _assert_like_tensorstore(x, factor, method)


def test_float_means_differ_from_tensorstore_only_by_the_summation():
    # The default sums in float64 and rounds once; tensorstore rounds after every
    # addition in float32: within the summands' rounding, but not bit for bit.
    # accumulate="input" is bit for bit (above).
    x = _volume((13, 17, 11), "float32", seed=1)
    expected = _tensorstore(x, 2, "mean")
    default = ops.downsample(2)(x)
    assert not np.array_equal(default, expected)
    np.testing.assert_allclose(default, expected, rtol=1e-6, atol=1e-4)


# ome-zarr-py and ngff-zarr, live: their pyramids of the same array.


def _ome_zarr_levels(x, dims, scale_factors, method, path) -> list[np.ndarray]:
    with warnings.catch_warnings():
        # Importing ome_zarr.writer builds its own deprecated Scaler and warns.
        warnings.simplefilter("ignore", DeprecationWarning)
        writer = pytest.importorskip("ome_zarr.writer")
    group = zarr.open_group(path, mode="w")
    writer.write_image(
        x, group=group, scale_factors=scale_factors, axes=dims, method=method
    )
    return [group[f"s{i}"][:] for i in range(1, len(scale_factors) + 1)]


def _ome_zarr_step(dims: str, factors) -> tuple[int, ...]:
    """Chunkwise's factor for one level: 2 where ome-zarr-py halves the axis."""
    halved = {d for d in "zyx" if d in dims and (factors.get(d, 1) > 1)}
    return tuple(2 if d in halved else 1 for d in dims[-min(len(dims), 3) :])


def _convention(method: str, step: tuple[int, ...]) -> ops.downsample:
    if method == "local_mean":
        return ops.downsample(step, "mean", rounding="toward_zero")
    return ops.downsample(step, "nearest", offset=tuple(k // 2 for k in step))


#: ome-zarr-py's test_build_pyramid grid (and its Scaler tests' shapes): shape,
#: scale factors of each level, axes. Its data: uint8 from a Poisson of mean 10.
_YX = [{"y": 2, "x": 2}, {"y": 4, "x": 4}, {"y": 8, "x": 8}]
OME_ZARR_GRID = [
    ((1, 2, 1, 256, 256), [d | {"t": 1, "c": 1, "z": 1} for d in _YX], "tczyx"),
    ((1, 2, 1, 256, 256), [2, 4, 8, 16], "tczyx"),
    ((1, 2, 1, 256, 256), [d | {"z": 1} for d in _YX], "tczyx"),
    ((128, 128, 128), [{"z": f, "y": f, "x": f} for f in (2, 4, 8)], "zyx"),
    ((256, 256), _YX, "yx"),
    ((3, 512, 512), [2, 4, 8, 16], "zyx"),
]


@pytest.mark.parametrize("method", ["local_mean", "nearest"])
@pytest.mark.parametrize(("shape", "scale_factors", "dims"), OME_ZARR_GRID, ids=str)
def test_ome_zarr_pyramid_grid(tmp_path, method, shape, scale_factors, dims):
    x = np.random.default_rng(0).poisson(10, shape).astype(np.uint8)
    levels = _ome_zarr_levels(x, dims, scale_factors, method, tmp_path / "peer.zarr")
    first = scale_factors[0]
    step = _ome_zarr_step(dims, first if isinstance(first, dict) else {"y": 2, "x": 2})
    op = _convention(method, step)
    level = x
    for expected in levels:
        level = op(level)
        np.testing.assert_array_equal(level, expected, strict=True)
    # The whole pyramid's last level in one chained run, chunk by chunk.
    chained = chunkwise.chain(*[op] * len(levels))
    chunks = tuple(min(n, 5) for n in levels[-1].shape)
    result = processed(x, chained, (chunks, tuple(2 * c for c in chunks)))
    np.testing.assert_array_equal(result, levels[-1], strict=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["local_mean", "nearest"])
@pytest.mark.parametrize("shape", [(5, 37, 44), (2, 3, 30, 31), (1, 2, 1, 21, 17)])
def test_ome_zarr_on_random_arrays(tmp_path, dtype, method, shape):
    dims = "tczyx"[-len(shape) :]
    x = _volume(shape, dtype, seed=7)
    (expected,) = _ome_zarr_levels(x, dims, [2], method, tmp_path / "peer.zarr")
    op = _convention(method, _ome_zarr_step(dims, {"y": 2, "x": 2}))
    # ome-zarr-py drops a partial window (nearest) or pads it with zeros
    # (local_mean): compare the whole windows.
    whole = tuple(
        slice(0, n // k)
        for n, k in zip(shape, _spatial(op.factor, len(shape), 1), strict=True)
    )
    expected = expected[whole]
    for result in (op(x), *(processed(x, op, lay) for lay in _layouts(expected.shape))):
        result = result[whole]
        if method == "local_mean" and dtype == "float32":
            # numpy sums float32 windows row by row in float32: the last bit differs.
            np.testing.assert_allclose(result, expected, rtol=2e-6, atol=1e-5)
        else:
            np.testing.assert_array_equal(result, expected, strict=True)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "bool"])
@pytest.mark.parametrize("method", ["nearest", "mode"])
@pytest.mark.parametrize("shape", [(16, 16), (17, 23), (12, 13, 14)])
def test_ngff_zarr_nearest_and_mode(dtype, method, shape):
    nz = pytest.importorskip("ngff_zarr", reason="ngff-zarr is not installed")
    x = _volume(shape, dtype, seed=3, values="few")
    peer = {
        "nearest": nz.Methods.DASK_IMAGE_NEAREST,
        "mode": nz.Methods.DASK_IMAGE_MODE,
    }
    image = nz.to_ngff_image(x, dims=list("zyx"[-len(shape) :]))
    levels = nz.to_multiscales(image, scale_factors=[2], method=peer[method])
    expected = np.asarray(levels.images[1].data)
    op = ops.downsample(2, method)  # offset 0 and ties to the smallest: the defaults
    whole = tuple(slice(0, n) for n in expected.shape)
    for layout in _layouts(expected.shape):
        np.testing.assert_array_equal(
            processed(x, op, layout)[whole], expected, strict=True
        )


def test_conventions_hold_on_chosen_axes():
    x = _volume((9, 11, 3), "uint8", seed=2)
    for op in (
        ops.downsample(2, "nearest", offset=1),
        ops.downsample(3, "median", median="lower"),
        ops.downsample(2, rounding="toward_zero"),
    ):
        result = chunkwise.process(x, op, axes="yxc", chunks=(2, 3, 1), n_jobs=2)[:]
        expected = np.stack([by_definition(x[..., c], op) for c in range(3)], axis=-1)
        np.testing.assert_array_equal(result, expected, strict=True)
