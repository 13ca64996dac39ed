"""Plans: lazy block sequences, block shapes, estimates, and region previews."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore

import chunkwise
from chunkwise import ops
from chunkwise._geometry import Box


def test_plan_over_a_huge_virtual_volume_is_lazy():
    store = MemoryStore()
    huge = zarr.create_array(
        store, shape=(100_000,) * 3, dtype="uint16", chunks=(64, 64, 64)
    )
    tracemalloc.start()
    try:
        plan = chunkwise.plan(huge, ops.gaussian(2), n_jobs=8)
        total = len(plan)
        last = plan.block(total - 1)
        estimates = (plan.bytes_read, plan.bytes_written, plan.peak_bytes_per_job)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    assert total == math.prod(plan.grid) > 10**8
    assert all(b % 64 == 0 for b in plan.block_shape)
    assert last.index == total - 1
    assert last.box.stop == (100_000,) * 3
    assert last.box.start == tuple(
        (g - 1) * b for g, b in zip(plan.grid, plan.block_shape, strict=True)
    )
    assert last.input_box == last.box.grow((8, 8, 8)).clip(huge.shape)
    assert estimates[1] == 2 * 10**15
    assert estimates[0] > estimates[1]
    # Planning wrote nothing and read no chunk.
    assert set(store._store_dict) == {"zarr.json"}


def test_plan_describes_the_output_layout():
    data = np.zeros((30, 40, 50), np.uint8)
    plan = chunkwise.plan(
        data, ops.downsample(2), chunks=(8, 8, 8), block=(8, 16, 16), n_jobs=2
    )
    assert plan.shape == (15, 20, 25)
    assert plan.dtype == np.uint8
    assert plan.chunks == (8, 8, 8)
    assert plan.block_shape == (8, 16, 16)
    assert plan.grid == (2, 2, 2)
    assert len(plan) == 8
    assert plan.n_chunks == 2 * 3 * 4
    assert plan.bytes_written == 15 * 20 * 25
    assert plan.bytes_read == data.nbytes
    assert plan.describe()["blocks"] == 8
    assert plan.block(7).box == Box((8, 16, 16), (15, 20, 25))
    assert plan.block(7).input_box == Box((16, 32, 32), (30, 40, 50))
    with pytest.raises((IndexError, ValueError), match="out of bounds"):
        plan.block(8)


def test_blocks_tile_the_output_and_are_whole_chunks():
    data = np.zeros((37, 41, 29), np.float32)
    plan = chunkwise.plan(data, ops.gaussian(1.5), chunks=(8, 8, 8), n_jobs=2)
    assert len(plan) >= 4  # at least two blocks per job
    cover = np.zeros(plan.shape, np.int64)
    for i, block in enumerate(plan):
        assert block.index == i
        assert all(a % 8 == 0 for a in block.box.start)
        cover[block.box.slices] += 1
        assert block.input_box.clip(data.shape) == block.input_box
    assert (cover == 1).all()


def test_auto_block_keeps_two_blocks_per_job():
    data = np.zeros((64, 64, 64), np.uint8)
    for n_jobs in (1, 2, 4, 8):
        plan = chunkwise.plan(data, ops.gaussian(4), chunks=(8, 8, 8), n_jobs=n_jobs)
        assert len(plan) >= 2 * n_jobs
        assert math.prod(plan.block_shape) <= 2**21


def test_block_and_chunks_per_spatial_axis_on_4d():
    data = np.zeros((3, 16, 16, 16), np.uint8)
    plan = chunkwise.plan(
        data, ops.gaussian(1), chunks=(4, 4, 4), block=(8, 8, 8), n_jobs=1
    )
    assert plan.chunks == (1, 4, 4, 4)
    assert plan.block_shape == (1, 8, 8, 8)
    assert len(plan) == 3 * 8
    # The halo never crosses the channel axis.
    block = plan.block(9)
    assert block.input_box.shape[0] == 1


def test_default_layout_for_numpy_input():
    plan = chunkwise.plan(np.zeros((100, 200, 300), np.uint8), ops.invert())
    assert plan.chunks == (64, 64, 64)
    plan = chunkwise.plan(np.zeros((1000, 30), np.uint8), ops.invert())
    assert plan.chunks == (256, 30)


def test_empty_output_is_refused():
    with pytest.raises(chunkwise.ChunkwiseError, match="empty"):
        chunkwise.plan(np.zeros((0, 4, 4), np.uint8), ops.invert())


@pytest.mark.parametrize(
    "region",
    [
        (5, slice(None), slice(None)),
        (slice(3, 9), 17, slice(2, 30)),
        (-1,),
        Box((0, 10, 10), (4, 20, 32)),
    ],
)
def test_compute_region_equals_that_part_of_the_run(tmp_path, region):
    data = np.random.default_rng(5).random((12, 24, 32), dtype=np.float32)
    zarr.create_array(tmp_path / "in.zarr", data=data, chunks=(8, 8, 8))
    op = chunkwise.chain(ops.gaussian(1.5, mode="wrap"), ops.clip(0.3, 0.7))
    part = chunkwise.compute_region(tmp_path / "in.zarr", op, region)
    whole = chunkwise.process(tmp_path / "in.zarr", op, n_jobs=2)[:]
    index = region.slices if isinstance(region, Box) else region
    np.testing.assert_array_equal(part, whole[index])
    np.testing.assert_array_equal(part, op(data)[index])


@pytest.mark.parametrize(
    ("op", "block"),
    [
        # Halo 1 on 64^3 chunks reads 66^3 (1.10x): one chunk is block enough.
        (ops.median(3), (64, 64, 64)),
        # Halo 8 reads 80^3 for a 64^3 block (1.95x): grow to 128^3 (1.42x), where
        # the next doubling would read more than TARGET_INPUT_VOXELS.
        (ops.gaussian(2), (128, 128, 128)),
        # No halo: each block reads its own input only.
        (ops.downsample(2), (64, 64, 64)),
        (ops.clip(0, 10), (64, 64, 64)),
    ],
    ids=["median", "gaussian", "downsample", "clip"],
)
def test_auto_block_grows_only_while_halos_cost(op, block):
    array = zarr.create_array(
        MemoryStore(), shape=(512,) * 3, chunks=(64,) * 3, dtype="uint8"
    )
    plan = chunkwise.plan(array, op, n_jobs=2)
    assert plan.block_shape == block
