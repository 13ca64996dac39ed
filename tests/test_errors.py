"""Bad input fails early, in one line naming the parameter; nothing is written."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import chunkwise
from chunkwise import ops

VOLUME = np.zeros((12, 12, 12), np.uint8)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: ops.gaussian(-1), "sigma"),
        (lambda: ops.gaussian((1, -2, 1)), "sigma"),
        (lambda: ops.downsample(0), "factor"),
        (lambda: ops.downsample(2, method="average"), "method"),
        (lambda: ops.upsample(2, order=3), "order"),
        (lambda: ops.clip(5, 1), "lo"),
        (lambda: ops.median(-1), "size"),
        (lambda: ops.gaussian(1, mode="mirrored"), "mode"),
        (lambda: ops.astype("complex64"), "dtype"),
        (lambda: ops.custom("numpy"), "function"),
        (lambda: ops.custom("numpy:no_such_function"), "function"),
        (lambda: ops.custom(lambda block: block), "function"),
        (lambda: ops.parse("gaussian:sigma=-1"), "sigma"),
        (lambda: ops.parse("downsample:factor=0"), "factor"),
        (lambda: ops.parse("clip:lo=5,hi=1"), "lo"),
        (lambda: ops.parse("blur:sigma=1"), "unknown operation 'blur'"),
        (lambda: ops.parse("gaussian:sigma"), "malformed"),
        (lambda: ops.parse("gaussian:=1"), "malformed"),
        (lambda: ops.parse("gaussian:width=1"), "width"),
        (lambda: ops.parse("gaussian:radius=-1"), "radius"),
        (lambda: ops.from_dict({"op": "gaussian", "sigma": "x"}), "sigma"),
    ],
)
def test_bad_operation_parameters(build, names):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        build()
    assert names in _one_line(error)


@pytest.mark.parametrize(
    ("op", "name"),
    [
        (ops.gaussian((1, 2)), "sigma has 2 values"),
        (ops.median((3, 3, 3, 3)), "size has 4 values"),
        (ops.downsample((2, 2)), "factor has 2 values"),
        (ops.custom("numpy:copy", halo=(1, 1)), "halo has 2 values"),
    ],
)
def test_wrong_number_of_per_axis_values(tmp_path, op, name):
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.process(VOLUME, op, out)
    assert name in _one_line(error)
    assert not out.exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.zeros((4, 4, 4), np.complex64), "dtype complex64"),
        (np.zeros((4, 4, 4), object), "dtype object"),
        (np.zeros((4, 4, 4), "U3"), "dtype <U3"),
        (np.zeros((4, 4, 4), np.float16), "dtype float16"),
        (np.zeros(()), "0 dimensions"),
        (np.zeros((1,) * 6), "6 dimensions"),
    ],
    ids=["complex", "object", "string", "float16", "0d", "6d"],
)
def test_unsupported_inputs(tmp_path, data, words):
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.process(data, ops.invert(), out)
    assert words in _one_line(error)
    assert not out.exists()


def test_unsupported_zarr_input_dtype(tmp_path):
    source = zarr.create_array(tmp_path / "in.zarr", shape=(4, 4), dtype="complex128")
    with pytest.raises(chunkwise.ChunkwiseError, match="dtype complex128"):
        chunkwise.process(source, ops.invert(), tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"backend": "spark"}, "backend"),
        ({"codec": "brotli"}, "codec"),
        ({"codec": "zstd:high"}, "codec level"),
        ({"codec": "gzip:12"}, "gzip level"),
        ({"zarr_format": 4}, "zarr_format"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"chunks": (0, 4, 4)}, "chunks"),
        ({"chunks": (4, 4)}, "chunks has 2 values"),
        ({"chunks": (4, 4, 4), "block": (6, 4, 4)}, "block"),
        ({"chunks": (4, 4, 4), "shards": (6, 4, 4)}, "shards"),
        (
            {"chunks": (4, 4, 4), "shards": (8, 8, 8), "block": (4, 8, 8)},
            "whole shards",
        ),
        ({"missing": "skip"}, "missing"),
    ],
    ids=lambda value: (
        ",".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, dict)
        else None
    ),
)
def test_bad_run_options_create_nothing(tmp_path, options, name):
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.process(VOLUME, ops.invert(), out, **options)
    assert name in _one_line(error)
    assert not out.exists()


def test_bad_regions():
    for region in ((slice(0, 0),), (0, 0, 0, 0), (99,), ("a",), (slice(0, 4, 2),)):
        with pytest.raises(chunkwise.ChunkwiseError, match="region"):
            chunkwise.compute_region(VOLUME, ops.invert(), region)
    with pytest.raises(chunkwise.ChunkwiseError, match="does not fit"):
        chunkwise.compute_region(
            VOLUME, ops.invert(), chunkwise.Box((0, 0, 0), (13, 1, 1))
        )


def test_error_family():
    assert issubclass(chunkwise.ChunkwiseError, ValueError)
    assert issubclass(chunkwise.BlockError, RuntimeError)
    assert issubclass(chunkwise.Cancelled, RuntimeError)
