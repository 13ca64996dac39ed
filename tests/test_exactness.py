"""process() end to end: the chunked output equals the whole-array reference.

References are scipy.ndimage and numpy called here, never chunkwise itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
from chunkwise import ops
from conftest import exact_settings, layouts, make_volume, reference_downsample, volumes

PRIME = (37, 41, 29)


def _axes(ndim: int) -> dict:
    return {"axes": tuple(range(ndim - 3, ndim))} if ndim == 4 else {}


def _chain_reference(x):
    blurred = ndimage.gaussian_filter(x, 1)
    return (reference_downsample(blurred, 2, "max") > 33000).astype(np.uint8)


CASES = {
    "gaussian": (ops.gaussian(1.5), lambda x: ndimage.gaussian_filter(x, 1.5)),
    "median-nearest": (
        ops.median(3, mode="nearest"),
        lambda x: ndimage.median_filter(x, 3, mode="nearest"),
    ),
    "downsample-mean": (
        ops.downsample(2),
        lambda x: reference_downsample(x, 2, "mean"),
    ),
    "chain": (
        chunkwise.chain(
            ops.gaussian(1), ops.downsample(2, "max"), ops.threshold(33000)
        ),
        _chain_reference,
    ),
}


@pytest.fixture(params=["memory", "directory"])
def out(request, tmp_path):
    return None if request.param == "memory" else tmp_path / "out.zarr"


@pytest.fixture(scope="module")
def prime_volume() -> np.ndarray:
    return make_volume(PRIME, "uint16", seed=1)


def _check_output(result: zarr.Array, expected: np.ndarray, zarr_format: int) -> None:
    assert result.metadata.zarr_format == zarr_format
    assert result.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(result[:], expected, strict=True)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_prime_shape_non_dividing_chunks(prime_volume, out, zarr_format, name):
    op, reference = CASES[name]
    expected = reference(prime_volume)
    chunks = (8, 9, 7) if name not in ("downsample-mean", "chain") else (5, 6, 4)
    result = chunkwise.process(
        prime_volume,
        op,
        out,
        chunks=chunks,
        block=(2 * chunks[0], chunks[1], 3 * chunks[2]),
        n_jobs=2,
        zarr_format=zarr_format,
    )
    _check_output(result, expected, zarr_format)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_sigma_3_with_chunks_of_4(prime_volume, out, zarr_format):
    # The halo (12) spans three chunks on each side of every block.
    expected = ndimage.gaussian_filter(prime_volume, 3)
    result = chunkwise.process(
        prime_volume,
        ops.gaussian(3),
        out,
        chunks=(4, 4, 4),
        block=(8, 4, 12),
        n_jobs=2,
        zarr_format=zarr_format,
    )
    _check_output(result, expected, zarr_format)


def test_zarr_input_and_shards(prime_volume, tmp_path):
    source = zarr.create_array(
        tmp_path / "in.zarr", shape=PRIME, chunks=(10, 10, 10), dtype="uint16"
    )
    source[:] = prime_volume
    op = ops.median((3, 1, 5), mode="wrap")
    expected = ndimage.median_filter(prime_volume, (3, 1, 5), mode="wrap")
    result = chunkwise.process(
        tmp_path / "in.zarr",
        op,
        tmp_path / "out.zarr",
        chunks=(4, 8, 8),
        shards=(8, 16, 16),
        block=(16, 16, 16),
        n_jobs=2,
    )
    _check_output(result, expected, 3)
    # Default chunks (the input's) and an automatic block size.
    default = chunkwise.process(source, op, n_jobs=2)
    assert default.chunks == (10, 10, 10)
    np.testing.assert_array_equal(default[:], expected, strict=True)


# Every catalogue filter, in 2D, 3D and 4D, in both formats and both stores.

FILTERS = {
    "gaussian": (ops.gaussian, ndimage.gaussian_filter),
    "laplace_of_gaussian": (ops.laplace_of_gaussian, ndimage.gaussian_laplace),
    "median": (ops.median, ndimage.median_filter),
    "minimum": (ops.minimum, ndimage.minimum_filter),
    "maximum": (ops.maximum, ndimage.maximum_filter),
    "uniform": (ops.uniform, ndimage.uniform_filter),
}


@exact_settings(30)
@given(
    data=st.data(),
    x=volumes(dtypes=("uint8", "int16", "float64"), max_side=20),
    name=st.sampled_from(sorted(FILTERS)),
    mode=st.sampled_from(ops.MODES),
    zarr_format=st.sampled_from([2, 3]),
    on_disk=st.booleans(),
)
def test_any_filter_any_layout_any_store(
    tmp_path_factory, data, x, name, mode, zarr_format, on_disk
):
    build, scipy_filter = FILTERS[name]
    param = 2 if name in ("gaussian", "laplace_of_gaussian") else 3
    expected = scipy_filter(x, param, mode=mode, **_axes(x.ndim))
    out = tmp_path_factory.mktemp("out") / "out.zarr" if on_disk else None
    chunks, block = data.draw(layouts(x.shape))
    result = chunkwise.process(
        x,
        build(param, mode=mode),
        out,
        chunks=chunks,
        block=block,
        n_jobs=2,
        zarr_format=zarr_format,
    )
    if name == "uniform" and x.dtype.kind == "f":
        np.testing.assert_allclose(result[:], expected, rtol=1e-12, atol=1e-10)
    else:
        _check_output(result, expected, zarr_format)


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (
            ops.gaussian(1.5, mode="wrap"),
            lambda x: ndimage.gaussian_filter(x, 1.5, mode="wrap"),
        ),
        (ops.custom("scipy.ndimage:laplace", halo=1), ndimage.laplace),
    ],
    ids=["gaussian-wrap", "custom-laplace"],
)
def test_loky_processes(tmp_path, op, reference):
    x = make_volume((13, 17, 11), "float32", seed=2)
    result = chunkwise.process(
        x,
        op,
        tmp_path / "out.zarr",
        chunks=(5, 6, 4),
        block=(10, 6, 8),
        n_jobs=2,
        backend="loky",
    )
    _check_output(result, reference(x), 3)


# compute_region previews the same planes that process() writes.

REGION_CASES = {
    "gaussian": ops.gaussian((2, 1, 1.5), mode="mirror"),
    "downsample": ops.downsample(3, method="median"),
    "chain": chunkwise.chain(
        ops.median(3), ops.downsample((2, 1, 3), "mode"), ops.gaussian(1)
    ),
}


@pytest.mark.parametrize("name", sorted(REGION_CASES))
def test_compute_region_plane_equals_process_plane(prime_volume, name):
    op = REGION_CASES[name]
    written = chunkwise.process(
        prime_volume, op, chunks=(4, 8, 8), block=(8, 16, 8), n_jobs=2
    )[:]
    expected = {
        "gaussian": lambda: ndimage.gaussian_filter(
            prime_volume, (2, 1, 1.5), mode="mirror"
        ),
        "downsample": lambda: reference_downsample(prime_volume, 3, "median"),
        "chain": lambda: ndimage.gaussian_filter(
            reference_downsample(
                ndimage.median_filter(prime_volume, 3), (2, 1, 3), "mode"
            ),
            1,
        ),
    }[name]()
    np.testing.assert_array_equal(written, expected, strict=True)
    n = written.shape[0]
    for k in sorted({0, 1, n // 2, n - 1}):
        plane = chunkwise.compute_region(
            prime_volume, op, (k, slice(None), slice(None))
        )
        np.testing.assert_array_equal(plane, written[k], strict=True)
    # A box in the middle, and a plane counted from the end.
    middle = (slice(1, n - 1), slice(2, 7), slice(3, written.shape[2]))
    np.testing.assert_array_equal(
        chunkwise.compute_region(prime_volume, op, middle), written[middle]
    )
    np.testing.assert_array_equal(
        chunkwise.compute_region(prime_volume, op, (-1,)), written[-1]
    )
