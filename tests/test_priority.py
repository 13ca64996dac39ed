"""View first: runs hand out the blocks over a focus first, with identical results."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._geometry import Box
from chunkwise._order import BlockOrder
from chunkwise._plan import make_plan
from chunkwise._sample import synthetic_ct
from chunkwise._source import open_source
from conftest import exact_settings

SHAPE = (64, 64, 64)
CHUNKS = (16, 16, 16)
#: One plane, a field of view on a plane, two tiers, a corner, one voxel.
PRIORITIES = [
    "40:41,:,:",
    ["40:41,20:30,20:30", "40:41,:,:"],
    [(slice(0, 64), slice(60, 64), slice(0, 5))],
    "63:64,63:64,63:64",
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    data = synthetic_ct(SHAPE, seed=5)
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    zarr.create_array(path, data=data, chunks=CHUNKS)
    return path, data


def _run(source, out, op, **kwargs) -> tuple[np.ndarray, list[int]]:
    run = chunkwise.iter_process(
        source, op, out, chunks=CHUNKS, block=CHUNKS, **{"n_jobs": 2, **kwargs}
    )
    order = [record.index for record in run]
    return zarr.open_array(run.output.store_path, mode="r")[:], order


def _plane_blocks(z: int) -> set[int]:
    """Indices of the 16**3 blocks of the 64**3 grid crossing plane ``z``."""
    return {(z // 16) * 16 + i for i in range(16)}


@pytest.fixture(scope="module")
def index_order(stored, tmp_path_factory) -> dict[str, np.ndarray]:
    path, _ = stored
    folder = tmp_path_factory.mktemp("index")
    results = {}
    for name, op in (("gaussian", ops.gaussian(1.5)), ("median", ops.median(3))):
        results[name], order = _run(path, folder / f"{name}.zarr", op)
        assert sorted(order) == list(range(64))
    return results


@pytest.mark.parametrize("priority", PRIORITIES, ids=range(len(PRIORITIES)))
def test_priority_result_is_bit_identical(stored, index_order, tmp_path, priority):
    path, data = stored
    gauss, _ = _run(path, tmp_path / "g.zarr", ops.gaussian(1.5), priority=priority)
    median, order = _run(path, tmp_path / "m.zarr", ops.median(3), priority=priority)
    assert sorted(order) == list(range(64))
    assert gauss.tobytes() == index_order["gaussian"].tobytes()
    assert median.tobytes() == index_order["median"].tobytes()
    np.testing.assert_array_equal(median, ndimage.median_filter(data, 3))
    np.testing.assert_array_equal(gauss, ops.gaussian(1.5)(data))


def test_plane_in_view_runs_first(stored, tmp_path):
    path, _ = stored
    _, order = _run(path, tmp_path / "o.zarr", ops.median(3), priority="40:41,:,:")
    # Two jobs finish in any order: the block handed out after the plane's last
    # one may finish before it, or two.
    assert set(order[: 16 + 2]) >= _plane_blocks(40)
    # The field of view on the plane comes before the rest of the plane.
    _, order = _run(
        path,
        tmp_path / "f.zarr",
        ops.median(3),
        n_jobs=1,
        priority=["40:41,20:30,20:30", "40:41,:,:"],
    )
    assert order[0] == 2 * 16 + 1 * 4 + 1
    assert set(order[:16]) == _plane_blocks(40)
    # Then the neighbouring planes of blocks, nearest first.
    assert set(order[16:48]) == _plane_blocks(20) | _plane_blocks(60)


def test_index_order_without_priority(stored, tmp_path):
    path, _ = stored
    _, order = _run(path, tmp_path / "o.zarr", ops.median(3), n_jobs=1)
    assert order == list(range(64))


def test_prioritise_mid_run_reorders_what_is_left(stored, tmp_path):
    path, data = stored
    run = chunkwise.iter_process(
        path, ops.median(3), tmp_path / "o.zarr", chunks=CHUNKS, block=CHUNKS, n_jobs=1
    )
    order = [next(run).index for _ in range(3)]
    assert order == [0, 1, 2]
    run.prioritise((slice(50, 51), slice(None), slice(None)))
    order += [record.index for record in run]
    # joblib may have dispatched up to two more blocks in the old order.
    after = order[3:]
    wanted = _plane_blocks(50)
    late = next(i for i, index in enumerate(after) if index in wanted)
    assert after[:late] == list(range(3, 3 + late))
    assert late <= 2
    assert set(after[late : late + 16]) == wanted
    assert sorted(order) == list(range(64))
    result = zarr.open_array(run.output.store_path, mode="r")[:]
    np.testing.assert_array_equal(result, ndimage.median_filter(data, 3))


def test_resume_with_another_priority_skips_done_blocks(stored, index_order, tmp_path):
    path, _ = stored
    out = tmp_path / "o.zarr"
    run = chunkwise.iter_process(
        path,
        ops.median(3),
        out,
        chunks=CHUNKS,
        block=CHUNKS,
        n_jobs=2,
        priority="10:11,:,:",
    )
    first = []
    with pytest.raises(chunkwise.Cancelled):
        for record in run:
            first.append(record.index)
            if len(first) == 20:
                run.cancel()
    assert set(first) >= _plane_blocks(10)
    result, second = _run(
        path, out, ops.median(3), n_jobs=1, resume=True, priority="60:61,:,:"
    )
    assert not set(first) & set(second)
    assert sorted(first + second) == list(range(64))
    assert set(second[:16]) == _plane_blocks(60)
    assert result.tobytes() == index_order["median"].tobytes()


def test_region_run_with_priority(stored, tmp_path):
    path, data = stored
    out = tmp_path / "o.zarr"
    _, order = _run(
        path,
        out,
        ops.median(3),
        n_jobs=1,
        region="0:32,:,:",
        priority=["20:21,40:50,40:50", "20:21,:,:"],
    )
    assert sorted(order) == sorted(range(32))
    assert set(order[:16]) == _plane_blocks(20)
    result = zarr.open_array(out, mode="r")[:32]
    np.testing.assert_array_equal(result, ndimage.median_filter(data, 3)[:32])


def test_loky_with_priority(stored, index_order, tmp_path):
    path, _ = stored
    result, order = _run(
        path,
        tmp_path / "o.zarr",
        ops.median(3),
        backend="loky",
        priority=["40:41,20:30,20:30", "40:41,:,:"],
    )
    assert sorted(order) == list(range(64))
    # Blocks are handed out in rank order, but they finish in the order two busy
    # processes get through them: on a loaded machine one of them can lag behind
    # the other by the tasks joblib hands out ahead (2 per process).
    assert set(order[: 16 + 2 * 2 * 2]) >= _plane_blocks(40)
    assert result.tobytes() == index_order["median"].tobytes()


@pytest.mark.parametrize("priority", [None, *PRIORITIES[:2]], ids=range(3))
def test_pyramid_levels_identical_in_any_order(stored, tmp_path, priority):
    path, _ = stored
    levels = []
    for name, order in (("a", None), ("b", priority)):
        out = tmp_path / f"{name}.ome.zarr"
        run = chunkwise.iter_process(
            path,
            ops.gaussian(1),
            out,
            chunks=(8, 8, 8),
            levels=4,
            n_jobs=2,
            priority=order,
        )
        for _ in run:
            pass
        group = zarr.open_group(out, mode="r")
        levels.append([group[str(i)][:] for i in range(len(run.target.levels))])
    assert len(levels[0]) == len(levels[1]) >= 3
    for mine, theirs in zip(*levels, strict=True):
        assert mine.tobytes() == theirs.tobytes()
    assert chunkwise.output_status(tmp_path / "b.ome.zarr").finished


def test_cache_holds_nothing_once_every_block_is_done(stored, tmp_path):
    """Under reordering the chunk cache still lets go of what no block reads again."""
    path, _ = stored
    run = chunkwise.iter_process(
        path,
        ops.gaussian(2),
        tmp_path / "o.zarr",
        chunks=CHUNKS,
        block=CHUNKS,
        n_jobs=2,
        priority=["40:41,20:30,20:30", "40:41,:,:"],
    )
    for _ in run:
        pass
    assert run.source.cache.nbytes == 0
    assert run.source.cache.loads > 0


def test_priority_outside_the_input_is_refused(stored, tmp_path):
    path, _ = stored
    with pytest.raises(chunkwise.ChunkwiseError):
        chunkwise.iter_process(
            path, ops.median(3), tmp_path / "o.zarr", priority="70:80,:,:"
        )


# --- the order itself ---------------------------------------------------------


def _plan(shape, block):
    source = open_source(np.zeros(shape, np.uint8))
    return make_plan(source, ops.median(3), chunks=block, block=block)


@st.composite
def _focus(draw):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, 30)) for _ in range(ndim))
    block = tuple(draw(st.integers(1, 8)) for _ in range(ndim))
    boxes = []
    for _ in range(draw(st.integers(0, 3))):
        start = tuple(draw(st.integers(0, n - 1)) for n in shape)
        stop = tuple(
            draw(st.integers(a + 1, n)) for a, n in zip(start, shape, strict=True)
        )
        boxes.append(Box(start, stop))
    return shape, block, boxes


@exact_settings(80)
@given(_focus(), st.data())
def test_order_hands_out_each_todo_block_once_by_rank(focus, data):
    shape, block, boxes = focus
    plan = _plan(shape, block)
    todo = np.asarray(
        data.draw(st.lists(st.booleans(), min_size=len(plan), max_size=len(plan))),
        dtype=bool,
    )
    wanted = set(np.flatnonzero(todo).tolist())
    order = BlockOrder(plan, boxes)
    handed = list(order.iter_blocks(todo))
    indices = [index for index, _ in handed]
    assert sorted(indices) == sorted(wanted)
    assert not todo.any()
    # The rank workers use to tell later blocks is the order they were handed out.
    ranks = [ranking.rank(index) for index, ranking in handed]
    assert ranks == sorted(ranks)
    if boxes:
        first = {i for i in wanted if plan.block(i).box.intersect(boxes[0]) is not None}
        assert set(indices[: len(first)]) == first


def test_prioritise_while_iterating_restarts_from_the_new_focus():
    plan = _plan((40, 40), (10, 10))
    order = BlockOrder(plan)
    todo = np.ones(len(plan), dtype=bool)
    blocks = order.iter_blocks(todo)
    assert [index for index, _ in itertools.islice(blocks, 2)] == [0, 1]
    order.prioritise([Box((35, 35), (36, 36))])
    rest = [index for index, _ in blocks]
    assert rest[0] == 15
    assert set(rest[1:4]) == {11, 14, 10}
    assert sorted(rest) == list(range(2, 16))
