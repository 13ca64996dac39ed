"""``custom`` with a boundary mode is exact like a built-in filter, wrap included.

A user function that wraps around the volume (scipy's ``wrap``) must see the halo
filled from the opposite face, as it sees the whole array; without ``mode`` its
block is cut at the faces and the result depends on the chunking. Each result is
compared with the function applied to the whole array in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
from chunkwise import ops
from conftest import exact_settings, layouts, make_volume, processed, volumes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _importable_tests():
    """Make ``tests.functions`` importable however pytest runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        yield


def whole(spec: str, x: np.ndarray) -> np.ndarray:
    """The function on the whole array, as the user would call it."""
    from chunkwise.ops._custom import resolve_function

    return resolve_function(spec)(x)


def test_a_wrapping_function_without_mode_depends_on_the_chunking():
    # The issue: the block is cut at the faces, so the function wraps around the
    # block instead of the volume (differences up to 196 in the peers' grid).
    x = make_volume((9, 12, 10), "uint8", 1)
    op = ops.custom("tests.functions:uniform_wrap", halo=1)
    expected = whole("tests.functions:uniform_wrap", x)
    chunked = processed(x, op, ((3, 4, 5), (3, 4, 5)))
    assert not np.array_equal(chunked, expected)
    # With the mode declared, the same function is exact.
    op = ops.custom("tests.functions:uniform_wrap", halo=1, mode="wrap")
    np.testing.assert_array_equal(
        processed(x, op, ((3, 4, 5), (3, 4, 5))), expected, strict=True
    )


@exact_settings(60)
@given(
    data=st.data(),
    x=volumes(ndims=(2, 3), max_side=20),
    spec=st.sampled_from(
        ["tests.functions:uniform_wrap", "tests.functions:laplace_wrap"]
    ),
    mode=st.sampled_from(["wrap", "grid-wrap"]),
    extra=st.integers(0, 3),
)
def test_wrapping_functions_are_exact_for_every_chunking(data, x, spec, mode, extra):
    # uniform's running sum makes float results depend on the line start, as in
    # scipy itself: it runs on integers here, laplace on everything.
    if spec.endswith("uniform_wrap") and x.dtype.kind == "f":
        x = np.rint(x).astype(np.int16)
    op = ops.custom(spec, halo=1 + extra, mode=mode)
    expected = whole(spec, x)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    chunked = processed(x, op, data.draw(layouts(x.shape)))
    np.testing.assert_array_equal(chunked, expected, strict=True)
    start = [data.draw(st.integers(0, n - 1)) for n in x.shape]
    region = tuple(
        slice(a, data.draw(st.integers(a + 1, n)))
        for a, n in zip(start, x.shape, strict=True)
    )
    np.testing.assert_array_equal(
        chunkwise.compute_region(x, op, region), expected[region], strict=True
    )


@pytest.mark.parametrize(
    ("shape", "mode", "layout"),
    [
        ((11, 9, 13), ("wrap", "mirror", "mirror"), ((1, 1, 1), (2, 3, 1))),
        ((11, 9, 13), ("grid-wrap", "reflect", "nearest"), ((2, 4, 3), (4, 4, 6))),
        ((17, 15), ("wrap", "constant"), ((1, 2), (3, 2))),
        ((2, 40), ("wrap", "mirror"), ((1, 7), (1, 14))),  # a halo past the axis
    ],
)
def test_per_axis_modes_wrap_only_where_the_function_does(shape, mode, layout):
    spec = "tests.functions:maximum_wrap_first_axis"
    x = make_volume(shape, "uint16", 2)
    op = ops.custom(spec, halo=2, mode=mode)
    expected = whole(spec, x)
    np.testing.assert_array_equal(processed(x, op, layout), expected, strict=True)
    # Wrapping the other axes too would feed the mirroring function wrong halos.
    everywhere = ops.custom(spec, halo=2, mode="wrap")
    assert not np.array_equal(processed(x, everywhere, layout), expected)


RAMP = np.arange(140.0).reshape(10, 14)
CHUNKINGS = [((5, 7), (5, 7)), ((3, 2), (3, 4)), ((1, 1), (2, 3))]


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
@pytest.mark.parametrize("index", range(13))
def test_dask_image_generic_filter_grid(index, mode):
    # dask-image's test_generic_filter_compare on its ramp, with scipy's reflect
    # (its grid) and wrap: the function declares the halo its window reaches.
    from tests.functions import GENERIC_GRID

    size, footprint, origin = GENERIC_GRID[index]
    lengths = footprint.shape if footprint is not None else (size, size)
    origins = np.broadcast_to(origin, 2)
    halo = tuple(int(n // 2 + abs(o)) for n, o in zip(lengths, origins, strict=True))
    spec = f"tests.functions:generic_{index}_{mode}"
    op = ops.custom(spec, halo=halo, mode=mode)
    expected = whole(spec, RAMP)
    for layout in CHUNKINGS:
        np.testing.assert_array_equal(
            processed(RAMP, op, layout), expected, strict=True
        )


def test_a_chain_of_wrapping_steps_is_exact():
    x = make_volume((12, 10, 9), "uint16", 3)
    op = chunkwise.chain(
        ops.gaussian(1.0, mode="wrap"),
        ops.custom("tests.functions:uniform_wrap", halo=1, mode="wrap"),
    )
    expected = ndimage.uniform_filter(
        ndimage.gaussian_filter(x, 1.0, mode="wrap"), 3, mode="wrap"
    )
    for layout in [((1, 2, 3), (2, 2, 3)), ((5, 5, 5), (10, 5, 5))]:
        np.testing.assert_array_equal(processed(x, op, layout), expected, strict=True)


def test_records_carry_the_mode():
    op = ops.custom("tests.functions:uniform_wrap", halo=(1, 2, 1), mode=("wrap",) * 3)
    record = json.loads(json.dumps(op.to_dict()))
    assert record["mode"] == ["wrap", "wrap", "wrap"]
    assert ops.from_dict(record) == op
    parsed = ops.parse(
        "custom:function=tests.functions:uniform_wrap,halo=1/2/1,mode=wrap/wrap/wrap"
    )
    assert parsed == op
    # A record written before custom had a mode is the default: cut at the faces.
    del record["mode"]
    assert ops.from_dict(record) == ops.custom(
        "tests.functions:uniform_wrap", halo=(1, 2, 1), mode="reflect"
    )


@pytest.mark.parametrize(
    ("make", "word"),
    [
        (lambda: ops.custom("numpy:copy", mode="warp"), "mode must be one of"),
        (lambda: ops.custom("numpy:copy", mode=()), "mode must not be empty"),
        (lambda: ops.custom("numpy:copy", mode=("wrap", "reflect")), "mode has 2"),
    ],
)
def test_bad_modes_are_one_line_errors(make, word):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        make()(np.zeros((4, 5, 6), np.uint8))
    assert word in str(error.value)
    assert "\n" not in str(error.value)


def test_records_of_earlier_versions_are_unchanged():
    # Resume compares records: custom without a mode is recorded as before.
    before = {"op": "custom", "function": "numpy:copy", "halo": 2, "dtype": None}
    assert ops.custom("numpy:copy", halo=2).to_dict() == before
