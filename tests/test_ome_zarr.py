"""OME-Zarr outputs with pyramids, pyramid inputs, and region runs (issue 10).

Every level is compared with an independent reference: the operation from scipy or
numpy on the whole array, then each level reduced from the one before by a plain
numpy mean (rounded half to even) or mode over 2x2x2 windows, clipped at the far
edges. The metadata is validated with ome-zarr-models and yaozarrs.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections import Counter

import numpy as np
import pytest
import yaozarrs
import zarr
from ome_zarr_models.v04.image import Image as ImageV04
from ome_zarr_models.v05.image import Image as ImageV05
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._sample import synthetic_ct
from chunkwise.errors import ChunkwiseError
from faults import *  # noqa: F403 - the fixtures
from faults import (
    SLOW_OP,
    run_cli,
    start_cli,
    wait_for,
)


def _windows(shape):
    """Index slices of each 2x2x2 window of a level of ``shape``, clipped."""
    ranges = [range(0, n, 2) for n in shape]
    for start in itertools.product(*ranges):
        yield tuple(start), tuple(slice(a, a + 2) for a in start)


def reduce_mean(data: np.ndarray) -> np.ndarray:
    """Mean over 2x2x2 windows (partial at the far edges), rounded half to even."""
    out_shape = tuple((n + 1) // 2 for n in data.shape)
    total = np.zeros(out_shape, np.float64)
    count = np.zeros(out_shape, np.float64)
    for offset in itertools.product((0, 1), repeat=data.ndim):
        part = data[tuple(slice(o, None, 2) for o in offset)]
        where = tuple(slice(0, n) for n in part.shape)
        total[where] += part
        count[where] += 1
    mean = total / count
    if data.dtype.kind in "ui":
        info = np.iinfo(data.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(data.dtype)
    return mean.astype(data.dtype)


def reduce_mode(data: np.ndarray) -> np.ndarray:
    """Most frequent value of each window; ties go to the smallest value."""
    out = np.empty(tuple((n + 1) // 2 for n in data.shape), data.dtype)
    for start, window in _windows(data.shape):
        counts = Counter(data[window].ravel().tolist())
        best = max(counts.values())
        out[tuple(a // 2 for a in start)] = min(
            v for v, c in counts.items() if c == best
        )
    return out


def expected_levels(data: np.ndarray, count: int, mode: bool) -> list[np.ndarray]:
    levels = [data]
    for _ in range(count - 1):
        levels.append((reduce_mode if mode else reduce_mean)(levels[-1]))
    return levels


def validate(path, zarr_format: int) -> None:
    group = zarr.open_group(path, mode="r")
    model = ImageV05 if zarr_format == 3 else ImageV04
    model.from_zarr(group)  # raises on invalid metadata
    yaozarrs.validate_zarr_store(str(path))


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    path = tmp_path_factory.mktemp("ome") / "in.zarr"
    data = synthetic_ct((45, 70, 83), seed=4)
    zarr.create_array(path, data=data, chunks=(16, 16, 16))
    return path, data


CASES = [
    ("gaussian:sigma=1.5", lambda d: ndimage.gaussian_filter(d, 1.5), False),
    ("median:size=3", lambda d: ndimage.median_filter(d, 3), False),
    ("copy", lambda d: d, False),
    ("threshold:value=120", lambda d: (d > 120).astype(np.uint8), True),
    (
        "downsample:factor=2,method=mean",
        lambda d: ops.downsample(2)(d),
        False,
    ),
]


#: Blocks of 16x32x32 leave every coarser chunk to the pyramid thread; 32^3 blocks
#: build level 1 inside the workers (from the block in memory).
BLOCKS = [(16, 32, 32), (32, 32, 32)]


@pytest.mark.parametrize("block", BLOCKS, ids=["across-blocks", "in-block"])
@pytest.mark.parametrize("zarr_format", [3, 2])
@pytest.mark.parametrize(("spec", "reference", "labels"), CASES)
def test_every_level_equals_an_independent_reference(
    volume, tmp_path, spec, reference, labels, zarr_format, block
):
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    group = chunkwise.process(
        path,
        ops.parse(spec),
        out,
        levels=3,
        n_jobs=2,
        zarr_format=zarr_format,
        block=block,
    )
    validate(out, zarr_format)
    expected = expected_levels(reference(data), 3, mode=labels)
    for number, level in enumerate(expected):
        np.testing.assert_array_equal(group[str(number)][:], level, f"level {number}")
    assert dict(group.attrs["chunkwise"])["status"] == "complete"
    assert chunkwise.verify(out) == []


def test_metadata_carries_scale_translation_and_composes_with_the_operation(tmp_path):
    data = synthetic_ct((20, 40, 40), seed=1)
    source = tmp_path / "in.ome.zarr"
    group = zarr.create_group(source, zarr_format=3)
    group.create_array("s0", data=data, chunks=(8, 16, 16), dimension_names="zyx")
    axes = [
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    transforms = [
        {"type": "scale", "scale": [2.0, 0.5, 0.5]},
        {"type": "translation", "translation": [10.0, 1.0, -3.0]},
    ]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "name": "heart",
                "axes": axes,
                "datasets": [{"path": "s0", "coordinateTransformations": transforms}],
            }
        ],
        "omero": {"channels": [{"label": "CT", "color": "FFFFFF", "window": {}}]},
    }
    out = tmp_path / "out.ome.zarr"
    chunkwise.process(source, ops.downsample(2), out, levels=2, n_jobs=1)
    validate(out, 3)
    image = dict(zarr.open_group(out, mode="r").attrs)["ome"]["multiscales"][0]
    assert image["axes"] == axes
    assert image["name"] == "heart"
    level0, level1 = (d["coordinateTransformations"] for d in image["datasets"])
    # downsample x2 doubles the scale and centres the voxel on its window.
    assert level0[0]["scale"] == [4.0, 1.0, 1.0]
    assert level0[1]["translation"] == [11.0, 1.25, -2.75]
    assert level1[0]["scale"] == [8.0, 2.0, 2.0]
    assert level1[1]["translation"] == [13.0, 1.75, -2.25]


def test_default_levels_stop_when_the_largest_axis_is_at_most_256(tmp_path):
    data = np.zeros((8, 600, 40), np.uint8)
    data[:, 100:300, 10:20] = 7
    out = tmp_path / "out.ome.zarr"
    group = chunkwise.process(data, ops.copy(), out, format="ome-zarr", n_jobs=1)
    shapes = [group[str(i)].shape for i in range(len(list(group.array_keys())))]
    assert shapes == [(8, 600, 40), (4, 300, 20), (2, 150, 10)]


def test_format_follows_the_output_name_and_is_validated(tmp_path):
    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    plain = chunkwise.process(data, ops.copy(), tmp_path / "a.zarr", n_jobs=1)
    assert isinstance(plain, zarr.Array)
    image = chunkwise.process(data, ops.copy(), tmp_path / "b.ome.zarr", n_jobs=1)
    assert isinstance(image, zarr.Group)
    with pytest.raises(ChunkwiseError, match="format must be one of"):
        chunkwise.process(data, ops.copy(), tmp_path / "c", format="tiff")
    with pytest.raises(ChunkwiseError, match="levels needs format"):
        chunkwise.process(data, ops.copy(), tmp_path / "d.zarr", levels=2)


def test_cli_converts_without_an_operation_and_info_lists_the_levels(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    result = run_cli("run", path, out, "--levels", "3", "--quiet")
    assert result.code == 0, str(result)
    expected = expected_levels(data, 3, mode=False)
    group = zarr.open_group(out, mode="r")
    for number, level in enumerate(expected):
        np.testing.assert_array_equal(group[str(number)][:], level)
    info = run_cli("info", out)
    assert info.code == 0, str(info)
    for number, level in enumerate(expected):
        assert f"level {number} ({number}): shape {level.shape}" in info.out
    assert "status: complete" in info.out


def test_a_coarser_input_level_makes_a_draft_with_its_own_metadata(volume, tmp_path):
    path, data = volume
    pyramid = tmp_path / "in.ome.zarr"
    chunkwise.process(path, ops.copy(), pyramid, levels=3, n_jobs=2)
    draft = tmp_path / "draft.ome.zarr"
    result = run_cli(
        "run", pyramid, draft, "--level", "1", "--op", "gaussian:sigma=1", "--quiet"
    )
    assert result.code == 0, str(result)
    level1 = expected_levels(data, 2, mode=False)[1]
    group = zarr.open_group(draft, mode="r")
    np.testing.assert_array_equal(group["0"][:], ndimage.gaussian_filter(level1, 1))
    transforms = dict(group.attrs)["ome"]["multiscales"][0]["datasets"][0]
    assert transforms["coordinateTransformations"][0]["scale"] == [2.0, 2.0, 2.0]
    assert transforms["coordinateTransformations"][1]["translation"] == [0.5] * 3
    missing = run_cli("run", pyramid, tmp_path / "x.zarr", "--level", "5")
    assert missing.code == 2 and "no level 5" in missing.err, str(missing)


def test_region_runs_write_only_their_chunks_and_resume_completes(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    expected = expected_levels(ndimage.gaussian_filter(data, 1), 2, mode=False)
    args = ("--op", "gaussian:sigma=1", "--levels", "2", "--block", "16,16,16")
    first = run_cli("run", path, out, *args, "--region", "0:10,20:40,0:30", "--quiet")
    assert first.code == 0, str(first)
    group = zarr.open_group(out, mode="r")
    record = dict(group.attrs["chunkwise"])
    assert record["status"] == "partial"
    level0 = group["0"][:]
    # Exactly the chunks over the region hold values; the rest is the fill value.
    covered = np.zeros(data.shape, bool)
    covered[0:16, 16:48, 0:32] = True
    np.testing.assert_array_equal(level0[covered], expected[0][covered])
    assert not level0[~covered].any()
    assert record["blocks_done"] == 4
    second = run_cli("run", path, out, *args, "--region", ":,60:,:", "--resume")
    assert second.code == 0, str(second)
    assert (
        dict(zarr.open_group(out, mode="r").attrs["chunkwise"])["status"] == "partial"
    )
    last = run_cli("run", path, out, *args, "--resume", "--quiet")
    assert last.code == 0, str(last)
    group = zarr.open_group(out, mode="r")
    assert dict(group.attrs["chunkwise"])["status"] == "complete"
    for number, level in enumerate(expected):
        np.testing.assert_array_equal(group[str(number)][:], level)


@pytest.mark.parametrize(
    "region", ["0:10,20:40", "a:b,0:1,0:1", "0:10,50:40,0:1", "100:200,0:1,0:1"]
)
def test_a_bad_region_is_one_line(volume, tmp_path, region):
    path, _ = volume
    result = run_cli("run", path, tmp_path / "o.zarr", "--region", region)
    assert result.code == 2, str(result)
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1, str(result)
    assert not (tmp_path / "o.zarr").exists()


def _level_ledger(out, level):
    try:
        return len(os.listdir(out / str(level) / "chunkwise-ledger"))
    except OSError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("block", ["16,16,16", "32,32,32"])
def test_kill9_while_a_pyramid_is_built_then_resume_equals_an_uninterrupted_run(
    volume, tmp_path, slow_op, block
):
    path, data = volume
    clean = tmp_path / "clean.ome.zarr"
    out = tmp_path / "out.ome.zarr"
    layout = ("--levels", "3", "--block", block, "--quiet", "-j", "2")
    first = run_cli("run", path, clean, "--op", SLOW_OP, *layout, env=slow_op(0))
    assert first.code == 0, str(first)
    env = slow_op(0.03)
    moments = [
        lambda: (out / "zarr.json").exists(),
        lambda: _level_ledger(out, 0) >= 3,
        lambda: _level_ledger(out, 1) >= 1,
        lambda: _level_ledger(out, 1) >= 8,
        lambda: _level_ledger(out, 2) >= 1,
    ]
    for i, reached in enumerate(moments):
        extra = ("--resume",) if i else ()
        run = start_cli("run", path, out, "--op", SLOW_OP, *layout, *extra, env=env)
        wait_for(lambda run=run, reached=reached: reached() or not run.running)
        if not run.running:
            break
        assert run.kill9() == -9
        metadata = json.loads((out / "zarr.json").read_text())
        record = metadata.get("attributes", {}).get("chunkwise", {})
        assert record.get("status") != "complete", i
    resumed = run_cli("run", path, out, "--op", SLOW_OP, *layout, "--resume", env=env)
    assert resumed.code == 0, str(resumed)
    a, b = zarr.open_group(clean, mode="r"), zarr.open_group(out, mode="r")
    for number in range(3):
        np.testing.assert_array_equal(b[str(number)][:], a[str(number)][:])
    assert chunkwise.verify(out) == []
    np.testing.assert_array_equal(a["0"][:], ndimage.median_filter(data, 3))


def test_a_damaged_level_chunk_is_found_by_verify_and_rebuilt_on_resume(
    volume, tmp_path
):
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    op = ops.gaussian(1)
    chunkwise.process(path, op, out, levels=3, n_jobs=2, region=(slice(0, 40),))
    files = sorted(p for p in (out / "1" / "c").rglob("*") if p.is_file())
    files[0].write_bytes(files[0].read_bytes()[:10])
    problems = chunkwise.verify(out)
    assert [p.level for p in problems] == [1], problems
    time.sleep(0.01)
    group = chunkwise.process(path, op, out, resume=True, n_jobs=2)
    expected = expected_levels(ndimage.gaussian_filter(data, 1), 3, mode=False)
    for number, level in enumerate(expected):
        np.testing.assert_array_equal(group[str(number)][:], level)
    assert chunkwise.verify(out) == []


def test_each_built_level_chunk_is_reported_once(tmp_path):
    volume = synthetic_ct((40, 48, 48), seed=2)
    run = chunkwise.iter_process(
        volume,
        ops.gaussian(1),
        tmp_path / "out.ome.zarr",
        levels=3,
        chunks=(8, 16, 16),
        block=(8, 16, 16),
        n_jobs=2,
    )
    reported = [pair for record in run for pair in record.levels]
    reported += run.levels_built
    group = run.target.record
    expected = []
    for level in (1, 2):
        array = group[str(level)]
        grid = [-(-n // c) for n, c in zip(array.shape, array.chunks, strict=True)]
        for index in itertools.product(*map(range, grid)):
            start = tuple(i * c for i, c in zip(index, array.chunks, strict=True))
            stop = tuple(
                min(a + c, n)
                for a, c, n in zip(start, array.chunks, array.shape, strict=True)
            )
            expected.append((level, start, stop))
    got = sorted((level, box.start, box.stop) for level, box in reported)
    assert got == sorted(expected)


def test_output_status_tells_each_state(tmp_path):
    volume = synthetic_ct((32, 32, 32), seed=5)
    out = tmp_path / "out.ome.zarr"
    assert chunkwise.output_status(out) is None
    layout = {"chunks": (8, 8, 8), "block": (8, 8, 8), "n_jobs": 1, "levels": 2}
    chunkwise.process(volume, ops.copy(), out, region=(slice(0, 8),), **layout)
    assert chunkwise.output_status(out) is chunkwise.Status.PARTIAL
    run = chunkwise.iter_process(volume, ops.copy(), out, resume=True, **layout)
    next(run)
    run.close()
    assert chunkwise.output_status(out) is chunkwise.Status.CANCELLED
    chunkwise.process(volume, ops.copy(), out, resume=True, **layout)
    assert chunkwise.output_status(out) is chunkwise.Status.COMPLETE
    assert chunkwise.output_status(out).finished
    zarr.create_array(tmp_path / "foreign.zarr", data=volume)
    assert chunkwise.output_status(tmp_path / "foreign.zarr") is None


def test_replacing_and_resuming_an_image_follow_the_array_rules(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    first = run_cli("run", path, out, "--levels", "2", "--quiet")
    assert first.code == 0, str(first)
    again = run_cli("run", path, out, "--levels", "2")
    assert again.code == 2 and "already exists" in again.err, str(again)
    other = run_cli("run", path, out, "--levels", "3", "--resume")
    assert other.code == 2 and "different output" in other.err, str(other)
    replaced = run_cli(
        "run", path, out, "--op", "invert", "--levels", "2", "--overwrite", "--quiet"
    )
    assert replaced.code == 0, str(replaced)
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(group["0"][:], ~data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]
    # An OME-Zarr image chunkwise did not write is replaced only with --force.
    foreign = tmp_path / "foreign.ome.zarr"
    image = zarr.create_group(foreign, zarr_format=3)
    image.create_array("0", data=data, dimension_names="zyx")
    image.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": n, "type": "space"} for n in "zyx"],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0, 1.0, 1.0]}
                        ],
                    }
                ],
            }
        ],
    }
    refused = run_cli("run", path, foreign, "--overwrite")
    assert refused.code == 2 and "--force" in refused.err, str(refused)
    np.testing.assert_array_equal(zarr.open_group(foreign, mode="r")["0"][:], data)
    forced = run_cli("run", path, foreign, "--overwrite", "--force", "--quiet")
    assert forced.code == 0, str(forced)
    # The input itself is never an output.
    same = run_cli("run", foreign, foreign, "--overwrite", "--force")
    assert same.code == 2, str(same)


@pytest.mark.parametrize(
    ("op", "factor"),
    [(ops.downsample(2), 0.5), (ops.upsample(2), 2.0), (ops.gaussian(1), 1.0)],
    ids=["downsample", "upsample", "gaussian"],
)
def test_a_region_in_input_voxels_covers_the_output_it_maps_to(tmp_path, op, factor):
    volume = synthetic_ct((32, 40, 48), seed=6)
    out = tmp_path / "out.zarr"
    region = (slice(8, 16), slice(10, 20), slice(0, 48))
    result = chunkwise.process(
        volume, op, out, chunks=(4, 4, 4), block=(4, 4, 4), region=region, n_jobs=1
    )
    expected = op(volume)
    # The output voxels whose centres lie in the region are computed...
    lo = [int(np.floor(s.start * factor)) for s in region]
    hi = [int(np.ceil(s.stop * factor)) for s in region]
    inside = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    np.testing.assert_array_equal(result[inside], expected[inside])
    # ... and nothing beyond the chunks that hold them.
    done = np.zeros(expected.shape, bool)
    done[
        tuple(slice(a // 4 * 4, -(-b // 4) * 4) for a, b in zip(lo, hi, strict=True))
    ] = 1
    assert not result[:][~done].any()
    assert chunkwise.output_status(out) is chunkwise.Status.PARTIAL


def test_a_user_group_beside_a_file_named_like_the_lock_is_never_cleared(tmp_path):
    # The debris of a creation killed before its group's metadata is cleared only
    # where a real chunkwise lock record proves it chunkwise's.
    out = tmp_path / "mine.ome.zarr"
    zarr.create_group(out, zarr_format=3)
    zarr.create_array(out / "0", shape=(4, 4, 4), dtype="uint8")
    (out / "chunkwise.lock").write_text("my notes about locks\n")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    volume = np.ones((4, 4, 4), np.uint8)
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(ChunkwiseError):
            chunkwise.process(volume, ops.copy(), out, n_jobs=1, **flags)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    # A group in memory without image metadata is refused, not a crash.
    store = zarr.storage.MemoryStore()
    zarr.create_group(store)
    with pytest.raises(ChunkwiseError, match="not an image"):
        chunkwise.process(volume, ops.copy(), store, n_jobs=1)


@pytest.mark.slow
def test_a_run_killed_while_zarr_wrote_level_metadata_is_resumed(
    volume, tmp_path, slow_op
):
    # zarr's local store writes a metadata file under a temporary name
    # (NAME.<uuid>.partial), then renames it: kill -9 between the two leaves it.
    path, data = volume
    out = tmp_path / "out.ome.zarr"
    layout = ("--levels", "3", "--block", "16,16,16", "--quiet", "-j", "2")
    env = slow_op(0.03)
    run = start_cli("run", path, out, "--op", SLOW_OP, *layout, env=env)
    wait_for(lambda: (out / "chunkwise.lock").exists() or not run.running)
    assert run.kill9() == -9
    for name in os.listdir(out):
        if name != "chunkwise.lock":
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    group = {"attributes": {}, "zarr_format": 3, "node_type": "group"}
    (out / "zarr.json").write_text(json.dumps(group))
    (out / f"zarr.{'a' * 32}.partial").write_text('{"attri')
    (out / "0").mkdir()
    (out / "0" / f"zarr.{'b' * 32}.partial").write_text("")
    (out / "1").mkdir()
    (out / "1" / "zarr.json").write_text("{}")

    resumed = run_cli("run", path, out, "--op", SLOW_OP, *layout, "--resume", env=env)
    assert resumed.code == 0, str(resumed)
    result = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(result["0"][:], ndimage.median_filter(data, 3))
    assert not any(name.endswith(".partial") for name in os.listdir(out))
    assert chunkwise.verify(out) == []
