"""Output that cannot be written: one clear line, never "complete" (issue 9)."""

from __future__ import annotations

import pytest

from faults import *  # noqa: F403 - the fixtures
from faults import (
    SLOW_OP,
    assert_one_line_error,
    ledger_count,
    run_args,
    run_cli,
    start_cli,
    status_of,
    wait_for,
)

NO_SPACE = "No space left on device"
#: Refused before writing, the reason may be worded as a space estimate instead.
NO_SPACE_AHEAD = ("free", "space")
READ_ONLY = "Read-only file system"


def _assert_write_failure(result, out, *reasons) -> None:
    """Exit 1 or 2, one line naming ``out`` and one of ``reasons``, not complete."""
    assert result.code in (1, 2), str(result)
    line = assert_one_line_error(result)
    assert str(out) in line or str(out.parent) in line, f"no path\n{result}"
    assert any(reason.lower() in line.lower() for reason in reasons), str(result)
    assert status_of(out) != "complete"


def _fill(point) -> None:
    """Take every free byte of a tmpfs."""
    with (point / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError:
            pass


@pytest.mark.parametrize(
    "flags", [(), ("--no-space-check",)], ids=["checked", "unchecked"]
)
def test_no_space_at_creation(volume, tmpfs, flags):
    point = tmpfs(size="16k")
    _fill(point)
    out = point / "out.zarr"
    result = run_cli(*run_args(volume.path, out, *flags))
    reasons = (NO_SPACE,) if flags else (NO_SPACE, *NO_SPACE_AHEAD)
    _assert_write_failure(result, out, *reasons)


def test_no_space_for_the_chunks(volume, tmpfs):
    point = tmpfs(size="96k")  # the metadata and some 4 KiB chunk pages, not all
    out = point / "out.zarr"
    result = run_cli(*run_args(volume.path, out))
    _assert_write_failure(result, out, NO_SPACE, *NO_SPACE_AHEAD)


@pytest.mark.slow
def test_no_space_mid_run_then_resume(volume, tmpfs, slow_op):
    point = tmpfs(size="8m")
    out = point / "out.zarr"
    env = slow_op(0.02)
    run = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 10 or not run.running, what="10 blocks")
    _fill(point)
    try:
        _assert_write_failure(run.finish(), out, NO_SPACE)
    finally:
        (point / "filler").unlink()
    resumed = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)


def test_no_inodes_left(volume, tmpfs):
    point = tmpfs(size="8m", nr_inodes=12)
    out = point / "out.zarr"
    result = run_cli(*run_args(volume.path, out))
    _assert_write_failure(result, out, NO_SPACE, "inode")


def test_read_only_file_system(volume, tmpfs):
    point = tmpfs(size="8m", ro=True)
    out = point / "out.zarr"
    result = run_cli(*run_args(volume.path, out))
    _assert_write_failure(result, out, READ_ONLY)
    assert not out.exists()


def test_a_mount_point_is_an_output_like_any_empty_folder(volume, tmpfs):
    out = tmpfs(size="8m")
    first = run_cli(*run_args(volume.path, out))
    assert first.code == 0, str(first)
    volume.check(out)
    again = run_cli(*run_args(volume.path, out, "--overwrite"))
    assert again.code == 0, str(again)
    volume.check(out)
