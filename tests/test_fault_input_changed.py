"""Resume refuses an input that changed since the run began (issue 9)."""

from __future__ import annotations

import shutil

import pytest
import zarr

import chunkwise
from faults import *  # noqa: F403 - the fixtures
from faults import (
    BLOCKS,
    CHUNKS,
    FAST_OP,
    assert_one_line_error,
    chunk_files,
    run_args,
    run_cli,
    tree_digest,
)


def _start(source, out, stop_after):
    """Run in process; cancel after ``stop_after`` blocks (None: to the end)."""
    run = chunkwise.iter_process(
        source,
        chunkwise.ops.parse(FAST_OP),
        out,
        n_jobs=2,
        chunks=CHUNKS,
        block=CHUNKS,
    )
    if stop_after is None:
        list(run)
        return
    with pytest.raises(chunkwise.Cancelled):
        for record in run:
            if record.done == stop_after:
                run.cancel()


@pytest.mark.parametrize(
    ("change", "stop_after"),
    [
        ("rewrite", 20),
        ("remove", 20),
        ("add", 20),
        ("rewrite", None),
    ],
    ids=["rewritten", "removed", "added", "rewritten-after-complete"],
)
def test_resume_after_the_input_changed_is_refused(
    tmp_path, reference, change, stop_after
):
    source = tmp_path / "in.zarr"
    shutil.copytree(reference.path, source)
    last = chunk_files(source)[-1]
    kept = tmp_path / "kept-chunk"
    if change == "add":
        shutil.move(last, kept)  # that chunk now reads as the fill value
    out = tmp_path / "out.zarr"
    _start(source, out, stop_after)
    assert stop_after is None or stop_after < BLOCKS
    before = tree_digest(out)

    if change == "rewrite":
        array = zarr.open_array(source, mode="r+")
        array[:16, :16, :16] = 255 - array[:16, :16, :16]
    elif change == "remove":
        last.unlink()
    else:
        shutil.move(kept, last)

    result = run_cli(*run_args(source, out, "--resume"))
    assert result.code == 2, str(result)
    line = assert_one_line_error(result).lower()
    assert "input changed" in line or ("input" in line and "changed" in line), line
    assert tree_digest(out) == before
