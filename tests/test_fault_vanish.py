"""Input that disappears mid-run: a failed run, never a complete one (issue 9)."""

from __future__ import annotations

import os

import pytest

from faults import *  # noqa: F403 - the fixtures
from faults import (
    SLOW_OP,
    assert_one_line_error,
    chunk_files,
    ledger_count,
    run_args,
    run_cli,
    start_cli,
    status_of,
    wait_for,
)


def _assert_failed(result, out) -> None:
    assert result.code == 1, str(result)
    assert_one_line_error(result)
    assert status_of(out) == "failed"


@pytest.mark.slow
def test_local_input_moved_away_mid_run(volume, tmp_path, slow_op):
    out = tmp_path / "out.zarr"
    env = slow_op(0.02)
    run = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 10 or not run.running, what="10 blocks")
    moved = tmp_path / "moved.zarr"
    os.rename(volume.path, moved)
    try:
        _assert_failed(run.finish(), out)
    finally:
        os.rename(moved, volume.path)
    resumed = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["one chunk 404", "server dies"])
def test_remote_input_fails_mid_run(volume, tmp_path, http_server, slow_op, fault):
    server = http_server(tmp_path)
    url = server.url_of("in.zarr")
    out = tmp_path / "out.zarr"
    env = slow_op(0.02)
    run = start_cli(*run_args(url, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 10 or not run.running, what="10 blocks")
    if fault == "server dies":
        server.die()
    else:
        # The last chunk: blocks go in order, so it has not been read yet.
        last = chunk_files(volume.path)[-1].relative_to(tmp_path).as_posix()
        server.missing = {last}
        server.mode = "404"
    _assert_failed(run.finish(timeout=90), out)
    if fault == "server dies":
        server.revive()
    else:
        server.mode = "ok"
    resumed = run_cli(*run_args(url, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)
