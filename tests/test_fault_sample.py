"""``chunkwise sample PATH`` follows run's rules for what it may replace (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from chunkwise._sample import synthetic_ct
from faults import *  # noqa: F403 - the fixtures
from faults import assert_one_line_error, run_cli, tree_digest

SMALL = ("--shape", "32,32,32", "--chunks", "16,16,16")


def _plain_zarr(path) -> None:
    """A Zarr array that chunkwise did not make."""
    data = np.arange(32**3, dtype=np.uint16).reshape(32, 32, 32)
    zarr.create_array(path, data=data, chunks=(16, 16, 16))


def _file(path) -> None:
    path.write_bytes(b"precious bytes\n" * 100)


def _folder(path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("precious")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(bytes(range(256)))


EXISTING = {"file": _file, "non-empty folder": _folder, "plain zarr array": _plain_zarr}


@pytest.mark.parametrize("flags", [(), ("--overwrite",)], ids=["plain", "overwrite"])
@pytest.mark.parametrize("kind", list(EXISTING))
def test_sample_never_replaces_what_chunkwise_did_not_make(tmp_path, kind, flags):
    target = tmp_path / "target.zarr"
    EXISTING[kind](target)
    before = tree_digest(target)
    result = run_cli("sample", target, *SMALL, *flags)
    assert result.code == 2, str(result)
    assert_one_line_error(result)
    assert tree_digest(target) == before


def test_sample_refuses_its_own_previous_sample_without_overwrite(tmp_path):
    target = tmp_path / "s.zarr"
    assert run_cli("sample", target, *SMALL).code == 0
    before = tree_digest(target)
    result = run_cli("sample", target, *SMALL, "--seed", "1")
    assert result.code == 2, str(result)
    assert_one_line_error(result, "--overwrite")
    assert tree_digest(target) == before


def test_sample_overwrite_replaces_a_previous_sample(tmp_path):
    target = tmp_path / "s.zarr"
    assert run_cli("sample", target, *SMALL).code == 0
    result = run_cli("sample", target, *SMALL, "--seed", "1", "--overwrite")
    assert result.code == 0, str(result)
    np.testing.assert_array_equal(
        zarr.open_array(target, mode="r")[:], synthetic_ct((32, 32, 32), seed=1)
    )


def test_sample_into_an_empty_folder_works(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    result = run_cli("sample", target, *SMALL)
    assert result.code == 0, str(result)
    np.testing.assert_array_equal(
        zarr.open_array(target, mode="r")[:], synthetic_ct((32, 32, 32), seed=0)
    )


@pytest.mark.parametrize("flags", [(), ("--overwrite",)], ids=["plain", "overwrite"])
def test_sample_rejects_an_empty_path_and_spares_the_working_folder(tmp_path, flags):
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "thesis.tex").write_text("three years of work")
    before = tree_digest(cwd)
    result = run_cli("sample", "", *SMALL, *flags, cwd=cwd)
    assert result.code == 2, str(result)
    assert_one_line_error(result)
    assert (cwd / "thesis.tex").read_text() == "three years of work"
    assert tree_digest(cwd) == before
