"""kill -9 at many moments, during --overwrite, and of a loky driver (issue 9)."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import psutil
import pytest
from scipy import ndimage

from faults import *  # noqa: F403 - the fixtures
from faults import (
    BLOCKS,
    FAST_OP,
    LAYOUT,
    SLOW_OP,
    clean_run,
    ledger_count,
    read_array,
    run_args,
    run_cli,
    start_cli,
    status_of,
    wait_for,
)


def _metadata(out):
    return (out / "zarr.json").exists()


#: Moments to kill at, in order, each in a run resumed from the previous kill.
KILL_POINTS = [
    ("the output folder appears", lambda out: out.exists()),
    ("the metadata is written", _metadata),
    *(
        (f"{n} blocks in the ledger", lambda out, n=n: ledger_count(out) >= n)
        for n in (1, 10, 40, 80, 120, 160, 200)
    ),
]


@pytest.mark.slow
def test_kill9_at_nine_moments_then_resume_equals_an_uninterrupted_run(
    volume, tmp_path, slow_op
):
    out = tmp_path / "out.zarr"
    env = slow_op(0.02)
    for i, (moment, reached) in enumerate(KILL_POINTS):
        extra = ("--resume",) if i else ()
        run = start_cli(*run_args(volume.path, out, *extra, op=SLOW_OP), env=env)
        wait_for(
            lambda run=run, reached=reached: reached(out) or not run.running,
            interval=0.001,
            what=moment,
        )
        code = run.kill9()
        assert code == -9, f"the run ended before {moment}: {run.finish()}"
        assert status_of(out) != "complete", moment
        assert ledger_count(out) < BLOCKS, moment

    resumed = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)


@pytest.mark.slow
def test_kill9_at_random_delays_then_resume_equals_an_uninterrupted_run(
    volume, tmp_path, slow_op
):
    out = tmp_path / "out.zarr"
    env = slow_op(0.03)
    # From before the output exists (the interpreter starts in about 0.8 s) to well
    # into the blocks.
    delays = random.Random(9).sample([x / 20 for x in range(10, 40)], 4)
    for i, delay in enumerate(delays):
        extra = ("--resume",) if i else ()
        run = start_cli(*run_args(volume.path, out, *extra, op=SLOW_OP), env=env)
        time.sleep(delay)
        if not run.running:  # it finished first: then it must have succeeded
            finished = run.finish()
            assert finished.code == 0, str(finished)
            break
        assert run.kill9() == -9
        assert status_of(out) != "complete", f"killed after {delay} s"
    resumed = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    volume.check(out)


#: 6912 chunk files of 4x8x8: replacing such an output takes a measurable time.
MANY_CHUNKS = ("--chunks", "4,8,8", "--block", "32,32,32", "-j", "2", "--quiet")


def _snapshot(tmp_path, out):
    def stat(path):
        try:
            info = os.stat(path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    listing = sorted(os.listdir(out)) if out.exists() else None
    return sorted(os.listdir(tmp_path)), listing, stat(out / "zarr.json")


@pytest.mark.slow
def test_kill9_during_overwrite_of_a_large_output_never_strands_it(volume, tmp_path):
    out = tmp_path / "out.zarr"
    args = ("run", volume.path, out, "--op", FAST_OP, *MANY_CHUNKS)
    first = run_cli(*args)
    assert first.code == 0, str(first)
    for delay in (0.0, 0.25, 0.6):
        before = _snapshot(tmp_path, out)
        run = start_cli(*args, "--overwrite")
        wait_for(
            lambda run=run, before=before: (
                _snapshot(tmp_path, out) != before or not run.running
            ),
            interval=0.001,
            what="the replacement to begin",
        )
        time.sleep(delay)
        run.kill9()
        # Whatever the kill left, overwriting it again must work...
        again = run_cli(*args, "--overwrite")
        assert again.code == 0, f"killed {delay} s into the replacement:\n{again}"
        volume.check(out)
        # ...and leave nothing else behind.
        assert sorted(os.listdir(tmp_path)) == ["in.zarr", "out.zarr"]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_kill9_of_a_loky_driver_leaves_no_worker_and_no_stray_write(
    volume, tmp_path, slow_op
):
    out = tmp_path / "out.zarr"
    env = slow_op(0.05)
    run = start_cli(
        *run_args(volume.path, out, "--backend", "loky", op=SLOW_OP), env=env
    )
    wait_for(lambda: ledger_count(out) >= 6 or not run.running, what="loky blocks")
    assert run.running, str(run.finish())
    workers = psutil.Process(run.pid).children(recursive=True)
    assert workers, "a loky run has worker processes"
    try:
        run.kill9()
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [w.pid for w in workers if _alive(w)]
        assert not survivors, f"loky workers {survivors} outlived their driver by 5 s"
        # Their resource tracker cleans up without reporting "leaked" semaphores.
        assert "leaked" not in run.finish().err

        # A different operation: a stray worker writing its median would show.
        op = "gaussian:sigma=1"
        replaced = run_cli(
            "run", volume.path, out, "--op", op, *LAYOUT, "--overwrite", env=env
        )
        assert replaced.code == 0, str(replaced)
        expected = clean_run(volume.path, op)
        np.testing.assert_array_equal(expected, ndimage.gaussian_filter(volume.data, 1))
        time.sleep(0.5)
        np.testing.assert_array_equal(read_array(out), expected)
        assert status_of(out) == "complete"
    finally:
        for worker in workers:
            if _alive(worker):
                worker.kill()


@pytest.mark.slow
def test_kill9_during_region_runs_then_other_regions_complete_the_output(
    volume, tmp_path, slow_op
):
    out = tmp_path / "out.zarr"
    env = slow_op(0.03)
    top = ("--region", "0:48,0:96,0:96")  # 3 x 6 x 6 = 108 of the 216 blocks
    for i, count in enumerate((1, 30, 70)):
        extra = (*top, "--resume") if i else top
        run = start_cli(*run_args(volume.path, out, *extra, op=SLOW_OP), env=env)
        wait_for(
            lambda run=run, count=count: ledger_count(out) >= count or not run.running,
            interval=0.001,
            what=f"{count} blocks in the ledger",
        )
        assert run.kill9() == -9, f"the region run ended before block {count}"
        assert status_of(out) not in ("complete", "partial")

    # The region, resumed, is exact; the rest is still the fill value and not done.
    resumed = run_cli(
        *run_args(volume.path, out, *top, "--resume", op=SLOW_OP), env=env
    )
    assert resumed.code == 0, str(resumed)
    assert status_of(out) == "partial"
    assert ledger_count(out) == 108
    result = read_array(out)
    np.testing.assert_array_equal(result[:48], volume.scipy[:48])
    assert not result[48:].any()

    # Another region, killed once, then the rest with no region: complete and exact.
    bottom = ("--region", "48:96,0:48,0:96")
    run = start_cli(
        *run_args(volume.path, out, *bottom, "--resume", op=SLOW_OP), env=env
    )
    wait_for(lambda: ledger_count(out) >= 120 or not run.running, interval=0.001)
    assert run.kill9() == -9
    rest = run_cli(*run_args(volume.path, out, "--resume", op=SLOW_OP), env=env)
    assert rest.code == 0, str(rest)
    volume.check(out)
