"""Runs: progress records, failures naming their block, cancel, resume, provenance.

Failing functions for ``ops.custom`` live in ``tests/faulty.py``.
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import chunkwise
from chunkwise import ops
from chunkwise._resources import RUN_CACHE_FLOOR, cache_budget
from chunkwise._source import open_source
from chunkwise._store import Ledger

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``tests.faulty`` and ``tests.functions`` importable however pytest runs."""
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.fixture
def cube(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 48**3 uint16 volume stored as 3 x 3 x 3 chunks of 16**3."""
    data = np.random.default_rng(2).integers(0, 4000, (48, 48, 48), dtype=np.uint16)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(16, 16, 16))
    return path, data


def _ledger(output: zarr.Array, total: int) -> list[int]:
    return Ledger.of(output).done(total).nonzero()[0].tolist()


def test_records_cover_the_output_once(cube):
    path, data = cube
    run = chunkwise.iter_process(path, ops.gaussian(1), n_jobs=2, block=(16, 16, 16))
    assert run.output.attrs["chunkwise"]["status"] == "created"
    records = list(run)
    total = len(run.plan)
    assert total == 27
    assert sorted(r.index for r in records) == list(range(total))
    assert [r.done for r in records] == list(range(1, total + 1))
    assert {r.total for r in records} == {total}
    assert all(r.seconds >= 0 for r in records)
    cover = np.zeros(data.shape, np.int64)
    for record in records:
        assert record.box == run.plan.block(record.index).box
        cover[record.box.slices] += 1
    assert (cover == 1).all()
    np.testing.assert_array_equal(run.output[:], ops.gaussian(1)(data))
    assert _ledger(run.output, total) == list(range(total))


def test_provenance(cube, tmp_path):
    path, data = cube
    op = chunkwise.chain(ops.gaussian((1, 2, 2), mode="nearest"), ops.downsample(2))
    result = chunkwise.process(path, op, tmp_path / "out.zarr", n_jobs=2)
    record = zarr.open_array(tmp_path / "out.zarr", mode="r").attrs["chunkwise"]
    assert record == result.attrs["chunkwise"]
    assert record["version"] == chunkwise.__version__
    assert record["status"] == "complete"
    assert "error" not in record
    assert record["operation"] == {
        "op": "chain",
        "steps": [
            {
                "op": "gaussian",
                "sigma": [1.0, 2.0, 2.0],
                "mode": "nearest",
                "cval": 0.0,
                "truncate": 4.0,
            },
            {"op": "downsample", "factor": 2, "method": "mean"},
        ],
    }
    assert ops.from_dict(record["operation"]) == op
    assert record["input"] == {
        "location": str(path),
        "shape": [48, 48, 48],
        "chunks": [16, 16, 16],
        "dtype": "uint16",
    }
    started = datetime.datetime.fromisoformat(record["started"])
    finished = datetime.datetime.fromisoformat(record["finished"])
    assert started.tzinfo is not None
    assert started <= finished <= datetime.datetime.now(datetime.timezone.utc)
    assert record["blocks_done"] == record["recipe"]["output"]["blocks"]
    assert record["recipe"]["output"]["shape"] == [24, 24, 24]
    np.testing.assert_array_equal(result[:], op(data))


def test_corrupt_chunk_names_block_and_chunk_and_keeps_finished_blocks(cube, tmp_path):
    path, data = cube
    (path / "c" / "2" / "2" / "2").write_bytes(b"garbage, not zstd" * 10)
    out = tmp_path / "out.zarr"
    op = ops.gaussian(1)
    plan = chunkwise.plan(path, op, block=(16, 16, 16), n_jobs=1)
    # Blocks run in order with one job; the first to read chunk (2, 2, 2) fails.
    first_bad = next(b.index for b in plan if min(b.input_box.stop) > 32)
    assert 0 < first_bad < len(plan) - 1
    with pytest.raises(chunkwise.BlockError) as error:
        chunkwise.process(path, op, out, n_jobs=1, block=(16, 16, 16))
    message = str(error.value)
    assert f"block {first_bad} (output" in message
    assert "input chunk (2, 2, 2)" in message
    output = zarr.open_array(out, mode="r")
    record = output.attrs["chunkwise"]
    assert record["status"] == "failed"
    assert record["error"] == message
    assert record["blocks_done"] == first_bad
    assert _ledger(output, len(plan)) == list(range(first_bad))
    # Repairing the input changes it: the finished blocks may have read the old
    # input, so resuming is refused, naming the change; overwrite starts again.
    zarr.open_array(path, mode="r+")[32:, 32:, 32:] = data[32:, 32:, 32:]
    with pytest.raises(chunkwise.ChunkwiseError, match="input changed"):
        chunkwise.process(path, op, out, n_jobs=2, resume=True)
    assert zarr.open_array(out, mode="r").attrs["chunkwise"] == record
    result = chunkwise.process(path, op, out, n_jobs=2, overwrite=True)
    np.testing.assert_array_equal(result[:], op(data))
    assert result.attrs["chunkwise"]["status"] == "complete"


def test_missing_chunk_fills_or_fails_on_request(tmp_path):
    data = np.arange(32 * 32, dtype=np.int32).reshape(32, 32) + 1
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=data, chunks=(16, 16))
    (path / "c" / "1" / "0").unlink()
    result = chunkwise.process(path, ops.invert(), n_jobs=1)
    expected = data.copy()
    expected[16:, :16] = 0
    np.testing.assert_array_equal(result[:], ~expected)
    with pytest.raises(chunkwise.BlockError, match=r"input chunk \(1, 0\) .* missing"):
        chunkwise.process(path, ops.invert(), n_jobs=1, missing="error")


def test_failing_function_names_its_block(importable_tests, tmp_path):
    data = np.zeros((32, 32, 32), np.float32)
    data[20, 5, 30] = -1  # in block (1, 0, 1) of 16**3 blocks: index 4 * 1 + 1 = 5
    op = ops.custom("tests.faulty:fail_on_negative")
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.BlockError) as error:
        chunkwise.process(
            data, op, out, n_jobs=2, chunks=(16, 16, 16), block=(16, 16, 16)
        )
    message = str(error.value)
    where = "block 5 (output [16:32, 0:16, 16:32], input [16:32, 0:16, 16:32])"
    assert f"{where} failed" in message
    assert "ValueError: a negative voxel was planted here" in message
    output = zarr.open_array(out, mode="r")
    assert output.attrs["chunkwise"]["status"] == "failed"
    assert 5 not in _ledger(output, 8)


def test_function_returning_another_shape_fails_its_block(tmp_path):
    op = ops.custom("numpy:ravel")
    with pytest.raises(chunkwise.BlockError, match=r"block 0 .* must keep the shape"):
        chunkwise.process(np.zeros((8, 8), np.uint8), op, n_jobs=1)


def test_cancel_from_the_consumer_stops_promptly_then_resume(
    importable_tests, monkeypatch, tmp_path
):
    # Blocks that sleep a little keep the test meaningful on a loaded machine: the
    # consumer always sees the first record long before the run could end.
    monkeypatch.setenv("CHUNKWISE_TEST_DELAY", "0.004")
    data = np.random.default_rng(3).integers(0, 255, (48, 48, 48), dtype=np.uint8)
    out = tmp_path / "out.zarr"
    op = ops.custom("tests.functions:slow_copy")
    token = chunkwise.CancelToken()
    layout = {"chunks": (8, 8, 8), "block": (8, 8, 8)}
    run = chunkwise.iter_process(data, op, out, n_jobs=2, cancel=token, **layout)
    total = len(run.plan)
    assert total == 216
    seen = 0
    with pytest.raises(chunkwise.Cancelled, match="resume to finish"):
        for _ in run:
            seen += 1
            token.cancel()
    assert token.cancelled
    # Only blocks already dispatched (a few per job) finish after the request.
    assert 1 <= seen <= 16
    record = zarr.open_array(out, mode="r").attrs["chunkwise"]
    assert record["status"] == "cancelled"
    assert record["blocks_done"] == seen
    assert len(_ledger(run.output, total)) == seen
    resumed = chunkwise.iter_process(data, op, out, n_jobs=2, resume=True)
    assert resumed.done_at_start == seen
    assert len(list(resumed)) == total - seen
    np.testing.assert_array_equal(zarr.open_array(out, mode="r")[:], data)
    assert resumed.output.attrs["chunkwise"]["status"] == "complete"


def test_run_cancel_and_close(tmp_path):
    data = np.zeros((32, 32, 32), np.uint8)
    run = chunkwise.iter_process(data, ops.invert(), n_jobs=1, chunks=(8, 8, 8))
    run.cancel()
    with pytest.raises(chunkwise.Cancelled, match="after 0 of"):
        list(run)
    run = chunkwise.iter_process(
        data, ops.invert(), tmp_path / "o.zarr", n_jobs=1, chunks=(8, 8, 8)
    )
    next(run)
    run.close()
    record = zarr.open_array(tmp_path / "o.zarr", mode="r").attrs["chunkwise"]
    assert record["status"] == "cancelled"


@pytest.mark.parametrize(
    "cache_bytes", [None, 2 * 2**20], ids=["default-cache", "cache-below-volume"]
)
@pytest.mark.parametrize("block", [None, (16, 16, 16)], ids=["auto-block", "chunk"])
def test_each_input_chunk_is_decoded_a_bounded_number_of_times(
    tmp_path, cache_bytes, block
):
    data = np.random.default_rng(4).random((96, 96, 96), dtype=np.float32)
    zarr.create_array(tmp_path / "in.zarr", data=data, chunks=(16, 16, 16))
    options = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
    source = open_source(tmp_path / "in.zarr", **options)
    assert cache_bytes is None or cache_bytes < data.nbytes
    result = chunkwise.process(source, ops.gaussian(2), n_jobs=2, block=block)
    n_chunks = 6**3
    ratio = source.cache.loads / n_chunks
    print(f"decoded {source.cache.loads} for {n_chunks} chunks: ratio {ratio:.2f}")
    assert 1 <= ratio <= 2
    np.testing.assert_array_equal(result[:], ops.gaussian(2)(data))
    # Chunks are dropped once their last reader is done: nothing is left behind.
    assert source.cache.nbytes == 0


def test_with_one_job_every_chunk_is_decoded_once_and_memory_is_the_front(tmp_path):
    data = np.random.default_rng(5).random((64, 128, 128), dtype=np.float32)
    zarr.create_array(tmp_path / "in.zarr", data=data, chunks=(16, 16, 16))
    source = open_source(tmp_path / "in.zarr", cache_bytes=2**30)
    peak = []
    run = chunkwise.iter_process(source, ops.gaussian(0.5), n_jobs=1, block=(16,) * 3)
    for _ in run:
        peak.append(source.cache.nbytes)
    assert source.cache.loads == 4 * 8 * 8
    # The live front: the layer of chunks ahead, decoded for the halo of the layer
    # being computed, plus the 2-voxel faces the next layer will read of it; chunks
    # are cut to those faces, not kept whole (which would be three layers).
    layer_bytes = 8 * 8 * 16**3 * 4
    assert max(peak) <= 1.5 * layer_bytes
    np.testing.assert_array_equal(run.output[:], ops.gaussian(0.5)(data))


def test_the_run_cache_budget_does_not_grow_with_the_volume(tmp_path):
    small = zarr.create_array(
        tmp_path / "small.zarr", shape=(512,) * 3, chunks=(64,) * 3, dtype="uint8"
    )
    large = zarr.create_array(
        tmp_path / "large.zarr", shape=(2048,) * 3, chunks=(64,) * 3, dtype="uint8"
    )
    budgets = []
    for array in (small, large):
        source = open_source(array)
        plan = chunkwise.plan(source, ops.gaussian(2), n_jobs=2)
        budgets.append(cache_budget(source, plan, 2))
    assert budgets[0] == budgets[1] == RUN_CACHE_FLOOR
    # Large chunks get room for what the blocks in flight touch.
    big = zarr.create_array(
        tmp_path / "big.zarr", shape=(512,) * 3, chunks=(128,) * 3, dtype="uint16"
    )
    source = open_source(big)
    plan = chunkwise.plan(source, ops.gaussian(2), n_jobs=2)
    assert cache_budget(source, plan, 2) == 2 * 27 * 128**3 * 2


def test_a_run_over_a_cache_smaller_than_its_front_stays_within_it(tmp_path):
    data = np.random.default_rng(6).integers(0, 255, (64, 160, 160), np.uint8)
    zarr.create_array(tmp_path / "in.zarr", data=data, chunks=(16, 16, 16))
    budget = 24 * 16**3  # 24 chunks; the layer ahead alone is 100
    source = open_source(tmp_path / "in.zarr", cache_bytes=budget)
    peak = []
    run = chunkwise.iter_process(source, ops.gaussian(1), n_jobs=2, block=(16,) * 3)
    for _ in run:
        peak.append(source.cache.nbytes)
    assert max(peak) <= budget
    np.testing.assert_array_equal(run.output[:], ops.gaussian(1)(data))
    assert source.cache.nbytes == 0


def test_loky_backend_writes_the_same_result(cube, tmp_path):
    path, data = cube
    result = chunkwise.process(
        path, ops.gaussian(1), tmp_path / "out.zarr", n_jobs=2, backend="loky"
    )
    np.testing.assert_array_equal(result[:], ops.gaussian(1)(data))
    assert result.attrs["chunkwise"]["status"] == "complete"


def test_negative_n_jobs_counts_back_from_all_cores(cube):
    path, data = cube
    result = chunkwise.process(path, ops.invert(), n_jobs=-1)
    np.testing.assert_array_equal(result[:], ~data)


@pytest.mark.parametrize(
    ("op", "shared"),
    [
        (ops.downsample(2), False),
        (ops.clip(10, 200), False),
        (ops.upsample(2), True),
        (ops.median(3), True),
    ],
    ids=["downsample", "clip", "upsample", "median"],
)
def test_chunks_read_by_one_block_only_bypass_the_cache(tmp_path, op, shared):
    data = np.random.default_rng(7).integers(0, 255, (48, 40, 40), np.uint8)
    zarr.create_array(tmp_path / "in.zarr", data=data, chunks=(16, 16, 16))
    source = open_source(tmp_path / "in.zarr")
    run = chunkwise.iter_process(source, op, n_jobs=2, chunks=(16, 16, 16))
    assert run.plan.shares_input(source.chunks) is shared
    list(run)
    np.testing.assert_array_equal(run.output[:], op(data))
    assert (source.cache.loads > 0) is shared


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="thread priorities are Linux-only"
)
def test_nice_lowers_the_job_threads_priority_and_never_the_callers(importable_tests):
    import os
    import threading

    data = np.zeros((32, 32, 32), np.int16)
    op = ops.custom("tests.functions:thread_niceness", dtype="int16")
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    result = chunkwise.process(data, op, n_jobs=2, chunks=(8, 8, 8), nice=5)
    assert set(np.unique(result[:])) == {min(mine + 5, 19)}
    # With one job the blocks run in the calling thread, which keeps its priority.
    result = chunkwise.process(data, op, n_jobs=1, chunks=(8, 8, 8), nice=5)
    assert set(np.unique(result[:])) == {mine}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    with pytest.raises(chunkwise.ChunkwiseError, match="nice must be"):
        chunkwise.process(data, op, nice=20)


def test_a_run_dropped_mid_way_in_zarrs_event_loop_records_its_end(tmp_path):
    """Garbage collection may close a dropped run in zarr's own loop thread."""
    import gc

    from chunkwise._zarr_compat import sync

    out = tmp_path / "o.zarr"
    run = chunkwise.iter_process(
        np.zeros((64, 64, 64), np.uint8),
        ops.gaussian(1),
        out,
        chunks=(16, 16, 16),
        n_jobs=1,
    )
    next(run)
    holder = [run]
    del run

    async def collect() -> None:
        holder.clear()
        gc.collect()

    sync(collect())
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = zarr.open_array(out, mode="r").attrs["chunkwise"]["status"]
        if status != "running":
            break
        time.sleep(0.05)
    assert status == "cancelled"
    # Its lock is let go: the output can be resumed at once.
    result = chunkwise.process(
        np.zeros((64, 64, 64), np.uint8), ops.gaussian(1), out, resume=True
    )
    assert result.attrs["chunkwise"]["status"] == "complete"
