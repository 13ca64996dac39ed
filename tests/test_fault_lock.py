"""One run per output at a time; a lock left by kill -9 blocks nothing (issue 9)."""

from __future__ import annotations

import pytest

from faults import *  # noqa: F403 - the fixtures
from faults import (
    BLOCKS,
    SLOW_OP,
    assert_one_line_error,
    ledger_count,
    run_args,
    run_cli,
    start_cli,
    wait_for,
)


def _mentions_lock(line: str) -> bool:
    line = line.lower()
    return "lock" in line or "another run" in line or "in use" in line


@pytest.mark.slow
def test_overwrite_while_another_run_writes_is_refused(volume, tmp_path, slow_op):
    out = tmp_path / "out.zarr"
    env = slow_op(0.03)  # about 3 s of blocks: plenty for run B to be refused
    first = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 5 or not first.running, what="run A")
    assert first.running, str(first.finish())

    second = run_cli(*run_args(volume.path, out, "--overwrite", op=SLOW_OP), env=env)
    assert second.code == 2, str(second)
    line = assert_one_line_error(second, str(first.pid))
    assert _mentions_lock(line), line
    assert first.running, "run B must not disturb run A"

    done = first.finish()
    assert done.code == 0, str(done)
    volume.check(out)


@pytest.mark.slow
def test_two_resumes_at_once_one_runs_one_is_refused(volume, tmp_path, slow_op):
    out = tmp_path / "out.zarr"
    env = slow_op(0.02)
    first = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 20 or not first.running, what="run A")
    assert first.kill9() == -9
    assert ledger_count(out) < BLOCKS

    resumes = [
        start_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
        for _ in range(2)
    ]
    results = [started.finish() for started in resumes]
    codes = sorted(result.code for result in results)
    assert codes == [0, 2], "\n".join(map(str, results))
    loser = next(result for result in results if result.code == 2)
    winner = resumes[[result.code for result in results].index(0)]
    line = assert_one_line_error(loser, str(winner.pid))
    assert _mentions_lock(line), line
    volume.check(out)


@pytest.mark.slow
def test_a_lock_left_by_kill9_blocks_neither_resume_nor_overwrite(
    volume, tmp_path, slow_op
):
    out = tmp_path / "out.zarr"
    env = slow_op(0.01)
    killed = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=env)
    wait_for(lambda: ledger_count(out) >= 10 or not killed.running, what="run A")
    assert killed.kill9() == -9

    resumed = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)

    again = start_cli(*run_args(volume.path, out, "--overwrite", op=SLOW_OP), env=env)
    wait_for(
        lambda: 10 <= ledger_count(out) < BLOCKS or not again.running,
        what="the overwriting run to get going",
    )
    assert again.kill9() == -9

    replaced = run_cli(
        *run_args(volume.path, out, "--overwrite", op=SLOW_OP), env=slow_op(0)
    )
    assert replaced.code == 0, str(replaced)
    volume.check(out)
