"""RunOptions: one value, checked once, that plan, process and the CLI share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import zarr

import chunkwise
from chunkwise import RunOptions, ops
from chunkwise.errors import ChunkwiseError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("options") / "in.zarr"
    zarr.create_array(path, shape=(512, 256, 256), chunks=(64, 64, 64), dtype="u1")
    return path


@pytest.mark.parametrize(
    "settings",
    [
        {"n_jobs": -1},
        {"n_jobs": None},
        {"n_jobs": 1},
        {"n_jobs": 3},
        {"n_jobs": -2},
        {"n_jobs": 64},
        {"n_jobs": -1, "backend": "loky"},
        {"n_jobs": 2, "backend": "dask", "scheduler": "local"},
        {"n_jobs": -1, "format": "ome-zarr"},
        {"n_jobs": 4, "chunks": (32, 32, 32)},
    ],
    ids=str,
)
def test_plan_plans_the_blocks_that_process_runs(source, tmp_path, settings):
    """The issue-13 bug: plan(n_jobs=-1) and process(n_jobs=-1) sized blocks apart."""
    op = ops.gaussian(2)
    planned = chunkwise.plan(source, op, **settings)
    out = tmp_path / ("o.ome.zarr" if settings.get("format") else "o.zarr")
    run = chunkwise.iter_process(source, op, out, **settings)
    try:
        assert run.plan.block_shape == planned.block_shape
        assert run.plan.chunks == planned.chunks
        assert len(run.plan) == len(planned)
    finally:
        run.close()


def test_an_options_value_and_keywords_give_the_same_run(source, tmp_path):
    options = RunOptions(n_jobs=2, chunks=(32, 64, 64), codec="zstd:3")
    a = chunkwise.process(source, ops.invert(), tmp_path / "a.zarr", options)
    b = chunkwise.process(
        source, ops.invert(), tmp_path / "b.zarr", n_jobs=2, chunks=(32, 64, 64),
        codec="zstd:3",
    )  # fmt: skip
    assert a.chunks == b.chunks == (32, 64, 64)
    recipe = a.attrs["chunkwise"]["recipe"]
    assert recipe == b.attrs["chunkwise"]["recipe"]
    np.testing.assert_array_equal(a[:], b[:])
    # Keywords change a given value.
    c = chunkwise.process(
        source, ops.invert(), tmp_path / "c.zarr", options, chunks=(64, 64, 64)
    )
    assert c.chunks == (64, 64, 64)
    assert c.attrs["chunkwise"]["recipe"]["output"]["codec"] == "zstd:3"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_jobs": 0}, "n_jobs must be a whole number"),
        ({"n_jobs": 1.5}, "n_jobs must be a whole number"),
        ({"n_jobs": True}, "n_jobs must be a whole number"),
        ({"backend": "spark"}, "backend must be one of threading, loky, dask"),
        ({"scheduler": "local"}, "a scheduler is for the dask backend"),
        ({"nice": 20}, "nice must be a whole number from 0 to 19"),
        ({"format": "tiff"}, "format must be one of zarr, ome-zarr"),
        ({"levels": 0, "format": "ome-zarr"}, "levels must be a whole number >= 1"),
        ({"levels": 2, "format": "zarr"}, "levels needs format='ome-zarr'"),
        ({"missing": "zero"}, "missing must be 'fill' or 'error'"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"overwrite": True, "resume": True}, "overwrite and resume exclude"),
        ({"force": True}, "force only applies with overwrite"),
        ({"codec": 3}, "codec must be text"),
        ({"n_job": 2}, "unknown option 'n_job' (did you mean 'n_jobs'?)"),
        ({"colour": "red"}, "unknown option 'colour'"),
    ],
    ids=str,
)
def test_bad_options_are_one_line_errors_before_anything_is_written(
    source, tmp_path, settings, message
):
    with pytest.raises(ChunkwiseError) as raised:
        RunOptions.of(None, **settings)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(ChunkwiseError, match="^" + message.replace("(", r"\(")[:20]):
        chunkwise.process(source, ops.invert(), tmp_path / "o.zarr", **settings)
    assert not (tmp_path / "o.zarr").exists()


def test_options_are_frozen_and_replace_checks_again():
    options = RunOptions(n_jobs=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.n_jobs = 3  # type: ignore[misc]
    assert options.replace(resume=True) == RunOptions(n_jobs=2, resume=True)
    with pytest.raises(ChunkwiseError, match="overwrite and resume"):
        options.replace(resume=True).replace(overwrite=True)
    with pytest.raises(ChunkwiseError, match=r"must be a chunkwise\.RunOptions"):
        chunkwise.process(np.zeros((4, 4, 4), np.uint8), ops.invert(), None, {"n": 1})


def test_every_option_is_documented_in_one_place():
    import inspect

    doc = inspect.getdoc(RunOptions)
    for field in dataclasses.fields(RunOptions):
        assert (
            f"\n{field.name} :" in doc
            or f"{field.name}, " in doc
            or (f", {field.name} :" in doc)
        ), field.name
