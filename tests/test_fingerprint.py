"""The input listing a run records: the same digest however it is walked, small."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import numpy as np
import pytest
import zarr

from chunkwise._fingerprint import list_input


def _reference(path) -> tuple[int, int, str]:
    """Every file under ``path``, sorted by relative path, digested as one list."""
    rows = []
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            info = os.stat(full)
            key = os.path.relpath(full, path).replace(os.sep, "/")
            rows.append((key, info.st_size, str(info.st_mtime_ns)))
    rows.sort()
    digest = hashlib.sha256()
    for key, size, stamp in rows:
        digest.update(f"{key}\0{size}\0{stamp}\n".encode())
    return len(rows), sum(size for _, size, _ in rows), digest.hexdigest()[:32]


LAYOUTS = {
    "v2-flat": {"zarr_format": 2},
    "v2-nested": {
        "zarr_format": 2,
        "chunk_key_encoding": {"name": "v2", "separator": "/"},
    },
    "v3": {"zarr_format": 3},
    "v3-dots": {
        "zarr_format": 3,
        "chunk_key_encoding": {"name": "default", "separator": "."},
    },
    "v3-sharded": {"zarr_format": 3, "shards": (4, 4, 4)},
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_listing_is_the_sorted_files_and_the_chunks_present(tmp_path, layout):
    path = tmp_path / "in.zarr"
    array = zarr.create_array(
        path, shape=(10, 9, 11), chunks=(2, 2, 2), dtype=np.uint16, **LAYOUTS[layout]
    )
    data = np.zeros(array.shape, np.uint16)
    data[:5, 3:, ::3] = np.arange(5 * 6 * 4, dtype=np.uint16).reshape(5, 6, 4) + 1
    array[:] = data  # chunks of zeros alone are not stored
    # Names that sort between a folder's files and its sibling folders.
    for name in ("c.txt", "0.5", "c0", "0a", "zz/a", "c/0.txt"):
        os.makedirs(os.path.dirname(path / name) or path, exist_ok=True)
        (path / name).write_bytes(name.encode())
    listing = list_input(zarr.open_array(path, mode="r"))
    files, size, digest = _reference(path)
    assert (listing.files, listing.bytes, listing.digest) == (files, size, digest)
    unit = array.shards or array.chunks
    stored = {
        tuple(i // u for i, u in zip(index, unit, strict=True))
        for index in zip(*np.nonzero(data), strict=True)
    }
    grid = listing.grid
    for flat in range(int(np.prod(grid))):
        index = tuple(int(i) for i in np.unravel_index(flat, grid))
        assert listing.had(index) == (index in stored), index


def test_listing_a_nested_input_holds_one_folder_at_a_time(tmp_path):
    path = tmp_path / "in.zarr"
    array = zarr.create_array(
        path, shape=(40, 25, 20), chunks=(1, 1, 1), dtype=np.uint8, fill_value=0
    )
    array[:] = 1  # 20,000 chunk files in 1,000 folders of 20
    tracemalloc.start()
    try:
        listing = list_input(zarr.open_array(path, mode="r"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert listing.files == 20_001
    assert (listing.files, listing.bytes, listing.digest) == _reference(path)
    # Holding the list (a key, a size and a stamp a file) took 6 MB here.
    assert peak < 1_000_000, f"{peak} bytes traced"
