"""Claiming an output: locks, what may be replaced, and replacing it safely.

These run the engine's API on real directories; tests/test_fault_*.py attack the
same rules through the command line, with real faults.
"""

from __future__ import annotations

import gc
import json
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
from chunkwise._output import LOCK, effective_status
from chunkwise._sample import write_synthetic_ct
from chunkwise._verify import verify

OP = ops.gaussian(1)


@pytest.fixture
def volume(tmp_path):
    path = tmp_path / "in.zarr"
    write_synthetic_ct(path, (32, 32, 32), chunks=(16, 16, 16))
    return path, zarr.open_array(path, mode="r")[:]


def _files(folder):
    return sorted(
        (p.relative_to(folder).as_posix(), p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    )


def test_a_run_holds_its_output_until_it_ends(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    run = chunkwise.iter_process(path, OP, out, n_jobs=1, block=(16, 16, 16))
    assert (out / LOCK).exists()
    for flags in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(chunkwise.ChunkwiseError, match="in use by run"):
            chunkwise.iter_process(path, OP, out, **flags)
    next(run)
    run.close()
    assert not (out / LOCK).exists()
    result = chunkwise.process(path, OP, out, resume=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))


def test_a_dropped_run_lets_go(volume, tmp_path):
    path, _ = volume
    out = tmp_path / "out.zarr"
    run = chunkwise.iter_process(path, OP, out)
    del run
    gc.collect()
    chunkwise.process(path, OP, out, overwrite=True)


def test_the_lock_of_a_killed_process_is_no_obstacle(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    code = (
        "import sys, time, chunkwise\n"
        "from chunkwise import ops\n"
        f"run = chunkwise.iter_process({str(path)!r}, ops.gaussian(1), "
        f"{str(out)!r})\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"locked\n"
        with pytest.raises(chunkwise.ChunkwiseError, match=f"pid {child.pid}"):
            chunkwise.iter_process(path, OP, out, overwrite=True)
        record = zarr.open_array(out, mode="r").attrs["chunkwise"]
        assert effective_status(record) == "created"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert (out / LOCK).exists()  # a stale file, but no longer a lock
    result = chunkwise.process(path, OP, out, resume=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))


@pytest.mark.parametrize("left", ["", "killed"])
def test_a_refused_run_names_a_holder_that_writes_its_record_late(
    volume, tmp_path, left
):
    # A run takes the flock first and writes its record a moment later; until then
    # the lock file is empty or still names a run killed before it.
    path, _ = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, OP, out)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = {
        "pid": int(dead.stdout),
        "host": socket.gethostname(),
        "run_id": "killed-run",
        "since": "then",
    }
    (out / LOCK).write_text(json.dumps(stale) if left else "")
    code = (
        "import fcntl, json, os, socket, sys, time\n"
        f"fd = os.open({str(out / LOCK)!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(0.5)\n"
        "os.ftruncate(fd, 0)\n"
        "os.write(fd, json.dumps({'pid': os.getpid(), 'run_id': 'late', "
        "'host': socket.gethostname()}).encode())\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"locked\n"
        with pytest.raises(chunkwise.ChunkwiseError) as refused:
            chunkwise.iter_process(path, OP, out, resume=True)
        assert f"run late (pid {child.pid}" in str(refused.value)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_only_chunkwise_arrays_are_replaced(volume, tmp_path):
    path, data = volume
    foreign = tmp_path / "foreign.zarr"
    zarr.create_array(foreign, data=np.ones((4, 4), np.uint8))
    before = _files(foreign)
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(chunkwise.ChunkwiseError, match="not made by chunkwise"):
            chunkwise.process(path, OP, foreign, **flags)
    assert _files(foreign) == before
    result = chunkwise.process(path, OP, foreign, overwrite=True, force=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))


@pytest.mark.parametrize("kind", ["file", "folder", "group"])
def test_what_is_not_an_array_is_never_replaced(volume, tmp_path, kind):
    path, _ = volume
    target = tmp_path / "target"
    if kind == "file":
        target.write_bytes(b"thesis")
    elif kind == "folder":
        target.mkdir()
        (target / "thesis.tex").write_bytes(b"thesis")
    else:
        zarr.open_group(target, mode="w").create_array("a", shape=(2,), dtype="u1")
    before = _files(target) if target.is_dir() else target.read_bytes()
    with pytest.raises(chunkwise.ChunkwiseError, match="refusing"):
        chunkwise.process(path, OP, target, overwrite=True, force=True)
    assert (_files(target) if target.is_dir() else target.read_bytes()) == before


def test_overwrite_leaves_no_trash_and_the_new_result(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, ops.invert(), out)
    result = chunkwise.process(path, OP, out, overwrite=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.zarr"]


def test_a_failing_replacement_keeps_the_old_output(volume, tmp_path):
    path, _ = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, ops.invert(), out)
    old = _files(out)
    bad = ops.custom("tests.faulty:fail_on_negative")
    negative = -np.ones((16, 16, 16), np.int16)
    with pytest.raises(chunkwise.BlockError, match="is kept at") as error:
        chunkwise.process(negative, bad, out, overwrite=True, n_jobs=1)
    kept = tmp_path / str(error.value).split("kept at ")[1].split(" until")[0]
    assert [f for f in _files(kept) if f[0] != LOCK] == [f for f in old if f[0] != LOCK]
    # The next run there deletes it.
    chunkwise.process(path, OP, out, overwrite=True)
    assert not kept.exists()


def test_debris_of_an_interrupted_creation_is_reused(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    (out / "chunkwise-ledger").mkdir(parents=True)
    (out / "chunkwise-ledger" / "0").write_bytes(b"")
    # The record a killed run's lock keeps (its process is long gone).
    (out / LOCK).write_text('{"pid": 1, "host": "elsewhere", "run_id": "0123"}')
    result = chunkwise.process(path, OP, out)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))


def test_an_output_with_the_inputs_provenance_is_the_input(volume, tmp_path):
    path, _ = volume
    first = tmp_path / "first.zarr"
    chunkwise.process(path, OP, first)
    alias = tmp_path / "alias.zarr"
    os.symlink(first, alias)
    with pytest.raises(chunkwise.ChunkwiseError, match="is the input"):
        chunkwise.process(first, OP, alias, overwrite=True)
    # Seen through another store (a copy stands in for a URL of the same folder).
    copy = zarr.open_array(
        zarr.storage.MemoryStore(), mode="w", shape=(32,) * 3, dtype="u1"
    )
    copy.update_attributes(zarr.open_array(first, mode="r").attrs.asdict())
    with pytest.raises(chunkwise.ChunkwiseError, match="same array as the input"):
        chunkwise.process(copy, OP, first, overwrite=True)


def test_sample_replaces_only_its_own_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thesis.tex").write_bytes(b"precious")
    with pytest.raises(chunkwise.ChunkwiseError, match="empty"):
        write_synthetic_ct("", (8, 8, 8), overwrite=True)
    with pytest.raises(chunkwise.ChunkwiseError, match="refusing"):
        write_synthetic_ct(".", (8, 8, 8), overwrite=True)
    write_synthetic_ct("s.zarr", (8, 8, 8))
    with pytest.raises(chunkwise.ChunkwiseError, match="overwrite"):
        write_synthetic_ct("s.zarr", (8, 8, 8))
    write_synthetic_ct("s.zarr", (8, 8, 8), seed=1, overwrite=True)
    assert (tmp_path / "thesis.tex").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr", "thesis.tex"]


def test_resume_recomputes_damaged_blocks(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, OP, out, block=(16, 16, 16))
    chunks = sorted(p for p in (out / "c").rglob("*") if p.is_file())
    chunks[0].write_bytes(chunks[0].read_bytes()[:-7])
    flipped = bytearray(chunks[-1].read_bytes())
    flipped[len(flipped) // 2] ^= 0x10
    chunks[-1].write_bytes(bytes(flipped))
    (chunks[1].parent / "x.partial").write_bytes(b"half a chunk")
    problems = verify(out)
    assert [p.block for p in problems] == [0, 7]
    run = chunkwise.iter_process(path, OP, out, resume=True)
    assert sorted(r.index for r in run) == [0, 7]
    assert run.done_at_start == 6
    assert not list((out / "c").rglob("*.partial"))
    assert verify(out) == []
    np.testing.assert_array_equal(
        zarr.open_array(out, mode="r")[:], ndimage.gaussian_filter(data, 1)
    )


def test_resume_refuses_a_changed_input(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    run = chunkwise.iter_process(path, OP, out, block=(16, 16, 16), n_jobs=1)
    next(run)
    run.close()
    zarr.open_array(path, mode="r+")[0, 0, 0] = data[0, 0, 0] + 1
    before = _files(out)
    with pytest.raises(chunkwise.ChunkwiseError, match="input changed"):
        chunkwise.process(path, OP, out, resume=True)
    assert _files(out) == before


def test_jobs_beyond_the_blocks_start_no_more_workers(volume, tmp_path):
    path, _ = volume
    run = chunkwise.iter_process(path, OP, tmp_path / "o.zarr", n_jobs=100_000)
    assert run.executor.workers == len(run.plan)
    list(run)


def test_blocks_beyond_the_memory_are_refused(tmp_path):
    huge = np.broadcast_to(np.zeros(1, np.uint8), (4096, 4096, 4096))
    with pytest.raises(chunkwise.ChunkwiseError, match="memory"):
        chunkwise.iter_process(
            huge, OP, tmp_path / "o.zarr", block=(4096, 4096, 4096), chunks=(512,) * 3
        )
    assert not (tmp_path / "o.zarr").exists()


def test_an_interrupted_replacement_in_place_is_finished(volume, tmp_path):
    # A mount point cannot be renamed: its entries move into a trash folder inside
    # it, metadata first. Killed half-way, what is left is old chunks and trash.
    path, data = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, ops.invert(), out)
    trash = out / ".chunkwise-trash-0123456789abcdef"
    trash.mkdir()
    (out / "zarr.json").rename(trash / "zarr.json")
    result = chunkwise.process(path, OP, out)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))
    assert not trash.exists()


def test_names_that_look_like_debris_are_not_debris(volume, tmp_path):
    path, _ = volume
    project = tmp_path / "project"
    (project / "raw").mkdir(parents=True)
    (project / "raw" / "scan.tif").write_bytes(b"scan")
    (project / ".seg.zarr.chunkwise-trash-0123456789abcdef").mkdir()
    (project / "data.partial").mkdir()
    (project / "data.partial" / "big.bin").write_bytes(b"big")
    before = _files(project)
    for flags in ({}, {"overwrite": True}, {"overwrite": True, "force": True}):
        with pytest.raises(chunkwise.ChunkwiseError, match="refusing"):
            chunkwise.process(path, OP, project, **flags)
    assert _files(project) == before


def test_a_dropped_started_run_does_not_block_the_next(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    run = chunkwise.iter_process(path, OP, out, n_jobs=1, block=(16, 16, 16))
    next(run)
    del run
    result = chunkwise.process(path, OP, out, resume=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))


def test_a_refused_run_leaves_a_live_runs_old_output_alone(volume, tmp_path):
    path, _ = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, ops.invert(), out)
    replacing = chunkwise.iter_process(path, OP, out, overwrite=True)
    (trash,) = [p for p in tmp_path.iterdir() if "trash" in p.name]
    with pytest.raises(chunkwise.ChunkwiseError, match="in use"):
        chunkwise.process(path, OP, out, resume=True)
    assert (trash / "zarr.json").exists()
    replacing.close()


def test_previews_do_not_inherit_a_runs_listing(volume, tmp_path):
    path, _ = volume
    array = zarr.open_array(path, mode="r+")
    chunkwise.process(array, ops.invert(), tmp_path / "out.zarr")
    array[:16, :16, :16] = 0  # zarr deletes the chunk: a legitimate edit
    plane = chunkwise.compute_region(array, ops.invert(), (5, slice(None), slice(None)))
    np.testing.assert_array_equal(plane, ~array[5])


def test_a_lost_chunk_of_a_finished_block_is_computed_again(volume, tmp_path):
    path, data = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, OP, out, block=(16, 16, 16))
    (out / "c" / "0" / "0" / "0").unlink()
    (problem,) = verify(out)
    assert (problem.block, problem.chunk) == (0, (0, 0, 0))
    assert "missing" in str(problem)
    result = chunkwise.process(path, OP, out, resume=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))
    assert verify(out) == []


def test_an_output_under_a_file_says_so(volume, tmp_path):
    path, _ = volume
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(chunkwise.ChunkwiseError, match="afile"):
        chunkwise.process(path, OP, tmp_path / "afile" / "out.zarr")


@pytest.mark.parametrize(
    "plant",
    [
        lambda d: (d / LOCK).write_text("my notes"),
        lambda d: (
            (d / "chunkwise-ledger").mkdir()
            or (d / "chunkwise-ledger" / "2024").write_text("tax")
        ),
    ],
    ids=["lock-named-file", "ledger-named-folder"],
)
def test_a_users_files_with_chunkwise_names_are_not_leftovers(volume, tmp_path, plant):
    path, _ = volume
    folder = tmp_path / "mine"
    folder.mkdir()
    plant(folder)
    before = _files(folder)
    for flags in ({}, {"overwrite": True, "force": True}, {"resume": True}):
        with pytest.raises(chunkwise.ChunkwiseError, match=r"refusing|in use"):
            chunkwise.process(path, OP, folder, **flags)
    with pytest.raises(chunkwise.ChunkwiseError, match="refusing"):
        write_synthetic_ct(folder, (8, 8, 8), overwrite=True)
    assert _files(folder) == before


def test_overwrite_through_a_symlink_replaces_its_target(volume, tmp_path):
    path, data = volume
    target = tmp_path / "target.zarr"
    chunkwise.process(path, ops.invert(), target)
    link = tmp_path / "link.zarr"
    link.symlink_to(target)
    chunkwise.process(path, OP, link, overwrite=True)
    assert link.is_symlink()
    np.testing.assert_array_equal(
        zarr.open_array(target, mode="r")[:], ndimage.gaussian_filter(data, 1)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.zarr",
        "link.zarr",
        "target.zarr",
    ]


def test_resume_refuses_metadata_edited_by_hand(volume, tmp_path):
    path, _ = volume
    out = tmp_path / "out.zarr"
    run = chunkwise.iter_process(path, OP, out, n_jobs=1, block=(16, 16, 16))
    next(run)
    run.close()
    metadata = out / "zarr.json"
    text = metadata.read_text()
    assert '"data_type": "uint8"' in text
    metadata.write_text(text.replace('"data_type": "uint8"', '"data_type": "float64"'))
    with pytest.raises(chunkwise.ChunkwiseError, match="dtype float64"):
        chunkwise.process(path, OP, out, resume=True)
    with pytest.raises(chunkwise.ChunkwiseError, match="dtype float64"):
        verify(out)


@pytest.mark.parametrize(
    ("layout", "chunk", "block"),
    [
        ({"codec": "lz4", "block": (16, 16, 16)}, "c/1/0/1", 5),
        ({"codec": "blosc-zstd", "block": (16, 16, 16)}, "c/1/0/1", 5),
        ({"codec": "gzip", "block": (16, 16, 16)}, "c/1/0/1", 5),
        ({"codec": "none", "block": (16, 16, 16)}, "c/1/0/1", 5),
        # zarr reads a shard before writing into it: a cut-off one must go first.
        ({"chunks": (8, 8, 8), "shards": (16, 16, 16)}, "c/0/0/0", 0),
    ],
    ids=["lz4", "blosc-zstd", "gzip", "none", "sharded"],
)
def test_a_cut_off_chunk_is_found_and_computed_again(
    volume, tmp_path, layout, chunk, block
):
    path, data = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, OP, out, n_jobs=1, **layout)
    cut = out / chunk
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    assert [p.block for p in verify(out)] == [block]
    result = chunkwise.process(path, OP, out, resume=True)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(data, 1))
    assert verify(out) == []


def test_a_replacement_that_cannot_start_puts_the_old_output_back(volume, tmp_path):
    path, _ = volume
    out = tmp_path / "out.zarr"
    chunkwise.process(path, ops.invert(), out)
    before = [f for f in _files(out) if f[0] != LOCK]
    with pytest.raises(chunkwise.ChunkwiseError, match="sharding"):
        chunkwise.process(
            path, OP, out, overwrite=True, zarr_format=2, shards=(32, 32, 32)
        )
    assert [f for f in _files(out) if f[0] != LOCK] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.zarr"]


def test_sample_refuses_a_negative_seed(tmp_path):
    with pytest.raises(chunkwise.ChunkwiseError, match="seed"):
        write_synthetic_ct(tmp_path / "s.zarr", (8, 8, 8), seed=-1)
    assert not (tmp_path / "s.zarr").exists()
