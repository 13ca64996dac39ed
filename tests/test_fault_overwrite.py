"""What --overwrite may replace: never a foreign array, never the input (issue 9)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr

import chunkwise
from faults import *  # noqa: F403 - the fixtures
from faults import (
    CHUNKS,
    FAST_OP,
    assert_one_line_error,
    run_args,
    run_cli,
    status_of,
    tree_digest,
)


def _plain_zarr(path, data) -> None:
    """A Zarr array written with plain zarr: chunkwise did not make it."""
    zarr.create_array(path, data=data, chunks=CHUNKS)


def _chunkwise_output(path, reference) -> None:
    chunkwise.process(
        reference.path, chunkwise.ops.parse(FAST_OP), path, chunks=CHUNKS, n_jobs=2
    )


def _make_input(kind, path, reference) -> None:
    if kind == "plain":
        _plain_zarr(path, reference.data)
    elif kind == "sample":
        shutil.copytree(reference.path, path)
    else:
        _chunkwise_output(path, reference)


def test_overwrite_refuses_an_array_chunkwise_did_not_make(volume, tmp_path):
    out = tmp_path / "foreign.zarr"
    _plain_zarr(out, np.arange(40 * 40 * 40, dtype=np.int32).reshape(40, 40, 40))
    before = tree_digest(out)
    result = run_cli(*run_args(volume.path, out, "--overwrite"))
    assert result.code == 2, str(result)
    assert_one_line_error(result)
    assert tree_digest(out) == before


def test_overwrite_with_force_replaces_an_array_chunkwise_did_not_make(
    volume, tmp_path
):
    out = tmp_path / "foreign.zarr"
    _plain_zarr(out, np.arange(40 * 40 * 40, dtype=np.int32).reshape(40, 40, 40))
    result = run_cli(*run_args(volume.path, out, "--overwrite", "--force"))
    assert result.code == 0, str(result)
    volume.check(out)


@pytest.mark.parametrize(
    "flags", [("--overwrite",), ("--overwrite", "--force")], ids=["overwrite", "force"]
)
@pytest.mark.parametrize("kind", ["plain", "run"])
def test_output_that_is_the_input_through_a_bind_mount_is_refused(
    mounts, tmp_path, reference, kind, flags
):
    folder = tmp_path / "data"
    folder.mkdir()
    source = folder / "in.zarr"
    _make_input(kind, source, reference)
    alias = mounts.bind(folder)
    assert (alias / "in.zarr").samefile(source)
    before = tree_digest(source)
    result = run_cli(*run_args(source, alias / "in.zarr", *flags))
    assert result.code == 2, str(result)
    assert_one_line_error(result)
    assert tree_digest(source) == before


@pytest.mark.parametrize("kind", ["plain", "run"])
def test_output_that_is_the_input_served_over_http_is_never_completed(
    http_server, tmp_path, reference, kind
):
    served = tmp_path / "served"
    served.mkdir()
    source = served / "in.zarr"
    _make_input(kind, source, reference)
    server = http_server(served)
    before = tree_digest(source)
    result = run_cli(*run_args(server.url_of("in.zarr"), source, "--overwrite"))
    assert not (result.code == 0 and status_of(source) == "complete"), str(result)
    assert result.code != 0, str(result)
    assert_one_line_error(result)
    if kind == "plain":
        assert result.code == 2, str(result)  # the foreign-array rule
    assert tree_digest(source) == before
