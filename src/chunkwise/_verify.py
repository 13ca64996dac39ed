"""Checking an output's finished blocks: every chunk they wrote must decode.

The ledger says which blocks a run finished; it cannot say whether their chunks
are still intact. Resume and ``chunkwise verify`` decode each chunk of the blocks
they trust: zstd (the default codec, written with a checksum) and gzip catch any
changed byte, every codec catches a truncated file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._chunkfiles import ChunkFiles
from chunkwise._geometry import Box, block_box, chunk_boxes
from chunkwise._keys import chunk_key, stored_units
from chunkwise._store import Ledger
from chunkwise._zarr_compat import sync

if TYPE_CHECKING:
    from collections.abc import Sequence

    import zarr

__all__ = [
    "Problem",
    "check_blocks",
    "find_problems",
    "forget_block",
    "layout_mismatch",
    "remove_partials",
    "verify",
]


@dataclass(frozen=True)
class Problem:
    """A finished block with a chunk that does not decode."""

    block: int
    chunk: tuple[int, ...] | None
    error: str
    #: The pyramid level (OME-Zarr); above 0, the "block" is one chunk of it.
    level: int = 0

    def __str__(self) -> str:
        where = "" if self.chunk is None else f" chunk {'.'.join(map(str, self.chunk))}"
        level = f"level {self.level} " if self.level else ""
        return f"{level}block {self.block}{where}: {self.error}"


def _missing(
    output: zarr.Array, index: int, box: Box, written: bytes
) -> Problem | None:
    """A stored chunk the block wrote (per its `written_map`) whose key is gone."""
    if not written:
        return None
    bits = np.unpackbits(np.frombuffer(written, np.uint8))
    store = output.store_path.store
    units = chunk_boxes(box, stored_units(output), output.shape)
    for bit, (unit, _) in zip(bits, units, strict=False):
        if bit and not sync(store.exists(chunk_key(output, unit))):
            return Problem(index, unit, "its chunk is missing")
    return None


def _check_one(
    output: zarr.Array, files: ChunkFiles | None, index: int, box: Box, written: bytes
) -> Problem | None:
    missing = _missing(output, index, box, written)
    if missing is not None:
        return missing
    if files is None:
        try:
            np.asarray(output[box.slices])
        except Exception as error:
            return Problem(index, None, f"{type(error).__name__}: {error}")
        return None
    for chunk, chunk_box in chunk_boxes(box, output.chunks, output.shape):
        try:
            files.read(chunk, chunk_box)
        except Exception as error:
            return Problem(index, chunk, f"{type(error).__name__}: {error}")
    return None


def find_problems(
    output: zarr.Array,
    blocks: Sequence[int] | np.ndarray,
    block_shape: Sequence[int],
    n_jobs: int = 1,
) -> list[Problem]:
    """Check every chunk of the given blocks; the blocks that fail, in order.

    A chunk fails if it does not decode, or if the block's ledger entry says it
    was written and it is gone.
    """
    files = ChunkFiles.of(output)
    ledger = Ledger.of(output)
    shape = tuple(output.shape)

    def check(index: Any) -> Problem | None:
        box = block_box(int(index), shape, block_shape)
        written = ledger.written(int(index))
        return _check_one(output, files, int(index), box, written)

    with ThreadPoolExecutor(max(1, n_jobs)) as pool:
        return [p for p in pool.map(check, blocks) if p is not None]


def check_blocks(
    output: zarr.Array,
    plan: Any,
    blocks: Sequence[int] | np.ndarray,
    n_jobs: int,
) -> list[int]:
    """The blocks among ``blocks`` with a chunk that fails `find_problems`."""
    if len(blocks) == 0 or math.prod(output.shape) == 0:
        return []
    return [p.block for p in find_problems(output, blocks, plan.block_shape, n_jobs)]


def forget_block(output: zarr.Array, box: Box) -> None:
    """Delete the stored chunks (shards) of a block, to write it anew."""
    store = output.store_path.store
    for unit, _ in chunk_boxes(box, stored_units(output), output.shape):
        sync(store.delete(chunk_key(output, unit)))


def layout_mismatch(output: zarr.Array, recorded: Any) -> str | None:
    """How an output's metadata differs from its run record's layout, or None."""
    actual = {
        "shape": list(output.shape),
        "dtype": np.dtype(output.dtype).name,
        "chunks": list(output.chunks),
        "shards": None if output.shards is None else list(output.shards),
        "zarr_format": output.metadata.zarr_format,
    }
    for name, value in actual.items():
        if recorded.get(name) != value:
            return (
                f"the output's metadata gives {name.replace('_', ' ')} {value}, its "
                f"run record {recorded.get(name)}"
            )
    return None


def remove_partials(root: Path) -> int:
    """Delete the ``*.partial`` files a killed writer left; how many there were."""
    removed = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".partial"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
    return removed


def verify(
    out: Any,
    *,
    n_jobs: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[Problem]:
    """Check a chunkwise output: decode every chunk of its finished blocks.

    Parameters
    ----------
    out : str, os.PathLike or zarr.Array
        An output written by `chunkwise.process` (a path or URL, or the array).
    n_jobs : int, optional
        Threads that decode; default all cores.
    storage_options : dict, optional
        fsspec's options for the file system of a URL ``out``, as for
        `chunkwise.process`.

    Returns
    -------
    list of Problem
        One per finished block with a chunk that does not decode (empty when the
        output is sound). Resuming computes those blocks again.

    Raises
    ------
    ChunkwiseError
        If ``out`` is not an output that chunkwise wrote.
    """
    import joblib

    from chunkwise._remote import check_storage_options, is_url, open_url
    from chunkwise._secrets import redact
    from chunkwise._store import open_output
    from chunkwise.errors import ChunkwiseError

    storage_options = check_storage_options(storage_options, out)
    where = out
    if isinstance(out, str | os.PathLike) and is_url(os.fspath(out)):
        # Opened here, so that a missing bucket or refused credentials say so.
        where = open_url(os.fspath(out), None, storage_options, role="output")
        out = redact(os.fspath(out))
    try:
        output = open_output(where)
    except ChunkwiseError as error:
        raise ChunkwiseError(f"{out}: {error}") from None
    array = output.base
    recipe = output.provenance.get("recipe")
    layout = recipe.get("output") if isinstance(recipe, dict) else None
    try:
        block_shape = tuple(int(b) for b in layout["block_shape"])
        count = int(layout["blocks"])
    except (TypeError, KeyError, ValueError):
        raise ChunkwiseError(
            f"{out} has no chunkwise run record to verify against"
        ) from None
    problem = layout_mismatch(array, layout)
    if problem:
        raise ChunkwiseError(f"{out}: {problem}; start again with overwrite")
    done = np.flatnonzero(Ledger.of(array).done(count))
    jobs = joblib.cpu_count() if n_jobs is None else max(1, int(n_jobs))
    problems = find_problems(array, done, block_shape, jobs)
    for level, coarse in enumerate(output.levels[1:], start=1):
        problems += [
            dataclasses.replace(problem, level=level)
            for problem in check_level(coarse, jobs)
        ]
    return problems


def check_level(array: zarr.Array, n_jobs: int = 1) -> list[Problem]:
    """Check the chunks a pyramid level's ledger records as built."""
    grid = [math.ceil(n / c) for n, c in zip(array.shape, array.chunks, strict=True)]
    built = np.flatnonzero(Ledger.of(array).done(math.prod(grid)))
    return find_problems(array, built, array.chunks, n_jobs)
