"""The dask backend on a real loopback cluster: exact, resumable, fault tolerant.

Every cluster here is ``LocalCluster(host="127.0.0.1", dashboard_address=None,
processes=True)`` or a scheduler and workers started as processes; outputs are
compared bit for bit with scipy.ndimage and with the threading backend.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._executors import _dask
from chunkwise.errors import BlockError, ChunkwiseError
from faults import *  # noqa: F403  (fixtures)
from faults import (
    SLOW_OP,
    assert_one_line_error,
    cli_env,
    ledger_count,
    read_array,
    run_args,
    run_cli,
    start_cli,
    status_of,
    wait_for,
)

distributed = pytest.importorskip(
    "distributed", reason="the dask backend needs dask.distributed"
)

pytestmark = pytest.mark.filterwarnings(
    # distributed's own shutdown of a cluster whose worker was killed.
    "ignore::ResourceWarning",
    "ignore:.*Restarting worker.*:UserWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
    # Two clusters at once: the second one's HTTP server moves to a free port.
    "ignore:Port 8787 is already in use:UserWarning",
)

SHAPE = (48, 56, 40)
CHUNKS = (16, 16, 16)


def _cluster(workers: int = 2, **env: str) -> distributed.LocalCluster:
    os.environ.update(env)
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "in.zarr"
    data = np.random.default_rng(7).integers(0, 250, SHAPE, dtype=np.uint8)
    array = zarr.create_array(path, shape=SHAPE, chunks=CHUNKS, dtype=np.uint8)
    array[:] = data
    return path, data


def _listing(path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in path.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (ops.gaussian(2), lambda a: ndimage.gaussian_filter(a, 2)),
        (ops.median(3), lambda a: ndimage.median_filter(a, 3)),
        (
            ops.downsample(2),
            lambda a: a.reshape(24, 2, 28, 2, 20, 2).mean(axis=(1, 3, 5)).round(),
        ),
    ],
    ids=["gaussian", "median", "downsample"],
)
def test_a_dask_run_equals_scipy_and_the_threading_run(
    client, small, tmp_path, op, reference
):
    path, data = small
    before = _listing(path)
    dask = chunkwise.process(
        path, op, tmp_path / "dask.zarr", backend="dask", scheduler=client
    )
    threads = chunkwise.process(path, op, tmp_path / "threads.zarr")
    assert dask.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(dask[:], threads[:])
    np.testing.assert_array_equal(dask[:], reference(data).astype(dask.dtype))
    assert _listing(path) == before, "the input was written"
    # A given client stays open for the next run.
    assert client.status == "running"


def test_an_ome_zarr_output_and_its_pyramid_come_out_the_same(client, small, tmp_path):
    path, _ = small
    op = ops.gaussian(1)
    chunkwise.process(
        path, op, tmp_path / "d.ome.zarr", backend="dask", scheduler=client, levels=3
    )
    chunkwise.process(path, op, tmp_path / "t.ome.zarr", levels=3)
    dask, threads = (
        zarr.open_group(tmp_path / "d.ome.zarr"),
        zarr.open_group(tmp_path / "t.ome.zarr"),
    )
    assert sorted(dask.array_keys()) == sorted(threads.array_keys())
    assert len(list(dask.array_keys())) == 3
    for name in dask.array_keys():
        np.testing.assert_array_equal(dask[name][:], threads[name][:])


def _blocks_in_flight(dask_scheduler) -> int:
    """Blocks the scheduler holds that have not finished (on the scheduler)."""
    waiting = ("released", "waiting", "no-worker", "queued", "processing")
    return sum(
        1
        for key, task in dask_scheduler.tasks.items()
        if str(key).startswith("chunkwise-") and task.state in waiting
    )


@pytest.mark.parametrize("n_jobs", [None, 1])
def test_submission_is_bounded_by_the_blocks_at_once(client, small, tmp_path, n_jobs):
    """A plan of 210 blocks never has more than a few tasks per slot submitted."""
    path, data = small
    run = chunkwise.iter_process(
        path,
        ops.copy(),
        tmp_path / "o.zarr",
        backend="dask",
        scheduler=client,
        n_jobs=n_jobs,
        chunks=(8, 8, 8),
        block=(8, 8, 8),
    )
    assert len(run.plan) == 6 * 7 * 5
    slots = sum(client.nthreads().values()) if n_jobs is None else n_jobs
    assert run.executor.workers == slots
    most = 0
    for _ in run:
        most = max(most, client.run_on_scheduler(_blocks_in_flight))
    assert 0 < most <= _dask.IN_FLIGHT * slots
    np.testing.assert_array_equal(run.output[:], data)


def test_blocks_faster_than_a_task_go_several_to_a_task(client, small, tmp_path):
    """210 tiny blocks: far fewer tasks, every block in the ledger, the same output."""
    path, data = small
    out = tmp_path / "o.zarr"
    with distributed.get_task_stream(client=client) as stream:
        chunkwise.process(
            path,
            ops.copy(),
            out,
            backend="dask",
            scheduler=client,
            chunks=(8, 8, 8),
            block=(8, 8, 8),
        )
    tasks = [task for task in stream.data if "chunkwise-" in str(task["key"])]
    assert 0 < len(tasks) < 210 / 2, f"{len(tasks)} tasks for 210 blocks"
    assert ledger_count(out) == 210
    assert status_of(out) == "complete"
    np.testing.assert_array_equal(zarr.open_array(out, mode="r")[:], data)


def _faults_of_a_second_buffer() -> int:
    """Minor page faults of filling a 1 MiB buffer, after one was made and freed.

    Smaller than a transparent huge page (2 MiB), which would take one fault.
    """
    import resource

    counts = []
    for _ in range(3):  # the fewest of three: nothing else of the thread's in it
        np.ones(2**20, np.uint8)
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        np.ones(2**20, np.uint8)
        counts.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
    return min(counts)


def test_workers_reuse_freed_block_buffers(tmp_path, small):
    """distributed's trim threshold makes each buffer new pages; a run undoes it."""
    path, data = small
    with _cluster(workers=1) as cluster, distributed.Client(cluster) as client:
        assert client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")  # dask's default
        [before] = client.run(_faults_of_a_second_buffer).values()
        chunkwise.process(
            path, ops.copy(), tmp_path / "o.zarr", backend="dask", scheduler=client
        )
        [after] = client.run(_faults_of_a_second_buffer).values()
    assert before >= 2**20 // 4096 // 4, (before, after)  # new pages, each faulted
    assert after < 16, (before, after)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "o.zarr")[:], data)


def test_a_user_error_names_block_and_input_region_once_and_is_not_retried(
    tmp_path, small
):
    _, data = small
    marked = data.copy()
    marked[-1, -1, -1] = 255
    source = tmp_path / "marked.zarr"
    zarr.create_array(source, shape=SHAPE, chunks=CHUNKS, dtype=np.uint8)[:] = marked
    calls = tmp_path / "calls"
    calls.mkdir()
    op = ops.custom("tests.functions:fails_in_corner", halo=0)
    with (
        _cluster(CHUNKWISE_TEST_CALLS=str(calls)) as cluster,
        distributed.Client(cluster) as client,
        pytest.raises(BlockError) as raised,
    ):
        chunkwise.process(
            source, op, tmp_path / "o.zarr", backend="dask", scheduler=client
        )
    message = str(raised.value)
    assert "\n" not in message
    assert message.count("the corner voxel is 255") == 1, message
    last = len(chunkwise.plan(source, op, n_jobs=2)) - 1
    assert f"block {last} " in message
    assert "input [32:48, 48:56, 32:40]" in message, message
    assert len(list(calls.iterdir())) == 1, "the failing block ran more than once"
    assert status_of(tmp_path / "o.zarr") == "failed"


@pytest.mark.parametrize("after", [0, 20, 60])
def test_a_worker_killed_mid_run_changes_nothing(tmp_path, small, after):
    """SIGKILL one of two workers after ``after`` blocks: its blocks run elsewhere."""
    path, data = small
    op = ops.custom("tests.functions:slow_gaussian", halo=4)
    expected = chunkwise.process(path, op, None, chunks=(8, 8, 8))[:]
    with (
        _cluster(CHUNKWISE_TEST_DELAY="0.02") as cluster,
        distributed.Client(cluster) as client,
    ):
        run = chunkwise.iter_process(
            path,
            op,
            tmp_path / "o.zarr",
            backend="dask",
            scheduler=client,
            chunks=(8, 8, 8),
            block=(8, 8, 8),
        )
        assert len(run.plan) > after + 40
        pids = client.run(os.getpid)
        killed = False
        for record in run:
            if not killed and record.done > after:
                os.kill(next(iter(pids.values())), signal.SIGKILL)
                killed = True
        assert killed
    assert status_of(tmp_path / "o.zarr") == "complete"
    result = read_array(tmp_path / "o.zarr")
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result, ndimage.gaussian_filter(data, 1.0))


def test_a_run_cancelled_on_dask_is_resumed_with_threads_and_back(tmp_path, small):
    path, data = small
    out = tmp_path / "o.zarr"
    layout = {"chunks": (8, 8, 8), "block": (8, 8, 8)}
    with _cluster() as cluster, distributed.Client(cluster) as client:
        run = chunkwise.iter_process(
            path, ops.median(3), out, backend="dask", scheduler=client, **layout
        )
        with pytest.raises(chunkwise.Cancelled):
            for record in run:
                if record.done == 10:
                    run.cancel()
        assert status_of(out) == "cancelled"
        # Threads take over, and are stopped in turn.
        run = chunkwise.iter_process(path, ops.median(3), out, resume=True, **layout)
        with pytest.raises(chunkwise.Cancelled):
            for record in run:
                if record.done >= 40:
                    run.cancel()
        chunkwise.process(
            path, ops.median(3), out, backend="dask", scheduler=client, resume=True
        )
    assert status_of(out) == "complete"
    np.testing.assert_array_equal(read_array(out), ndimage.median_filter(data, 3))


def test_local_cluster_from_the_cli(tmp_path, small):
    path, data = small
    out = tmp_path / "o.zarr"
    result = run_cli(
        "run", path, out, "--op", "gaussian:sigma=1", "--backend", "dask",
        "--scheduler", "local", "-j", "2", "--quiet",
    )  # fmt: skip
    assert result.code == 0, str(result)
    assert result.err == "", str(result)
    assert status_of(out) == "complete"
    np.testing.assert_array_equal(read_array(out), ndimage.gaussian_filter(data, 1))


def test_bad_dask_settings_are_one_line_errors(tmp_path, small):
    path, _ = small
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cases = [
        (("--scheduler", "local"), "scheduler is for the dask backend"),
        (
            ("--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{port}"),
            f"cannot reach the dask scheduler at tcp://127.0.0.1:{port}",
        ),
        # Workers that cannot start: each imports a module that is not there.
        (
            ("--backend", "dask", "--scheduler", "local", "-j", "2"),
            "could not start a local dask cluster of 2 worker processes",
        ),
    ]
    env = cli_env(
        DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s",
        DASK_DISTRIBUTED__WORKER__PRELOAD='["chunkwise_no_such_module"]',
    )
    for extra, needle in cases:
        result = run_cli(
            "run", path, tmp_path / "o.zarr", "--op", "copy", *extra, env=env
        )
        assert result.code == 2, str(result)
        assert_one_line_error(result, needle)
        assert not (tmp_path / "o.zarr").exists()
    with pytest.raises(ChunkwiseError, match="in-memory store"):
        chunkwise.process(path, ops.copy(), None, backend="dask", scheduler="local")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_scheduler_that_dies_leaves_a_resumable_output(tmp_path, volume, slow_op):
    """kill -9 the scheduler mid-run: one line, exit 1, and a resume on threads."""
    path = volume.path
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = slow_op(0.05, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
         "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    workers = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address,
         "--nworkers", "2", "--nthreads", "1", "--no-dashboard", "--host",
         "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        out = tmp_path / "o.zarr"
        started = start_cli(
            *run_args(
                path, out, "--backend", "dask", "--scheduler", address, op=SLOW_OP
            ),
            env=env,
        )
        wait_for(lambda: ledger_count(out) >= 5, what="five blocks", timeout=120)
        os.killpg(scheduler.pid, signal.SIGKILL)
        result = started.finish(timeout=120)
    finally:
        for process in (scheduler, workers):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert result.code == 1, str(result)
    assert_one_line_error(result, f"lost the dask scheduler at {address}", "resume")
    assert status_of(out) == "failed"
    done = ledger_count(out)
    assert 5 <= done < 216
    resumed = run_cli(*run_args(path, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    assert status_of(out) == "complete"
    volume.check(out)


def test_relative_paths_mean_the_drivers_directory_on_every_worker(
    client, small, tmp_path, monkeypatch
):
    """The workers started elsewhere; a relative output must not land there."""
    path, data = small
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.zarr").symlink_to(path)
    chunkwise.process(
        "in.zarr", ops.gaussian(1), "out.zarr", backend="dask", scheduler=client
    )
    assert status_of(tmp_path / "out.zarr") == "complete"
    np.testing.assert_array_equal(
        read_array(tmp_path / "out.zarr"), ndimage.gaussian_filter(data, 1)
    )
    elsewhere = client.run(os.getcwd)
    assert all(folder != str(tmp_path) for folder in elsewhere.values())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("after", "resume_on"), [(1, "threading"), (60, "dask"), (150, "threading")]
)
def test_kill9_of_a_dask_driver_then_resume(
    tmp_path, volume, slow_op, after, resume_on
):
    """kill -9 the driver of a local-cluster run: no worker stays, resume is exact."""
    import psutil

    out = tmp_path / "o.zarr"
    env = slow_op(0.03)
    started = start_cli(
        *run_args(
            volume.path, out, "--backend", "dask", "--scheduler", "local", op=SLOW_OP
        ),
        env=env,
    )
    wait_for(lambda: ledger_count(out) >= after, what=f"{after} blocks", timeout=120)
    workers = psutil.Process(started.pid).children(recursive=True)
    assert workers, "the local cluster's worker processes"
    started.kill9()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"worker processes outlived their driver: {alive}"
    assert status_of(out) == "running"
    extra = ("--backend", "dask", "--scheduler", "local") if resume_on == "dask" else ()
    resumed = run_cli(
        *run_args(volume.path, out, "--resume", *extra, op=SLOW_OP), env=env
    )
    assert resumed.code == 0, str(resumed)
    volume.check(out)


def test_a_connection_is_not_the_default_client_and_closing_ends_its_workers():
    """The napari widget keeps one: napari's own dask arrays must not compute on it."""
    psutil = pytest.importorskip("psutil", reason="counts the cluster's processes")
    connection = _dask.DaskConnection("local", 2)
    try:
        connection.wait_for_workers()
        assert connection.alive
        pids = set(connection.client.run(os.getpid).values())
        assert len(pids) == 2
        try:
            default = distributed.default_client()
        except ValueError:  # no client at all
            default = None
        assert default is not connection.client
    finally:
        connection.close()
    assert not connection.alive
    left = [pid for pid in pids if psutil.pid_exists(pid)]
    assert all(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in left)


def test_a_long_run_does_not_grow_the_drivers_message_log(tmp_path, small):
    """distributed keeps its last 1000 sent messages; each submission held a job."""
    path, data = small
    with _cluster() as cluster:
        address = cluster.scheduler_address
        connection = _dask.DaskConnection(address)
        try:
            sent = connection.client.scheduler_comm
            chunkwise.process(
                path,
                ops.copy(),
                tmp_path / "o.zarr",
                backend="dask",
                scheduler=connection.client,
                chunks=(8, 8, 8),
                block=(8, 8, 8),
            )
            assert sent.byte_count > 0  # the submissions went this way
            assert len(sent.recent_message_log) == 0
        finally:
            connection.close()
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "o.zarr")[:], data)
