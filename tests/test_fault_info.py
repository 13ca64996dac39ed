"""``chunkwise info`` tells a run killed with kill -9 from a running one (issue 9)."""

from __future__ import annotations

import socket

import pytest

from faults import *  # noqa: F403 - the fixtures
from faults import SLOW_OP, ledger_count, run_args, run_cli, start_cli, wait_for


@pytest.mark.slow
def test_info_reports_a_killed_run_as_interrupted(volume, tmp_path, slow_op):
    out = tmp_path / "out.zarr"
    run = start_cli(*run_args(volume.path, out, op=SLOW_OP), env=slow_op(0.02))
    wait_for(lambda: ledger_count(out) >= 5 or not run.running, what="5 blocks")
    assert run.kill9() == -9

    info = run_cli("info", out)
    assert info.code == 0, str(info)
    assert "interrupted" in info.out.lower(), str(info)
    # The run recorded who it was: its process and host.
    assert str(run.pid) in info.out, str(info)
    assert socket.gethostname() in info.out, str(info)
