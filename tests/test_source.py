"""Inputs: every kind of source on disk, in a zip, over HTTP, or in memory.

Each input is processed for real and compared with the operation applied to the
whole array; the input is never modified.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from typing import TYPE_CHECKING

import numpy as np
import pytest
import zarr
from scipy import ndimage
from zarr.storage import LocalStore

import chunkwise
from chunkwise import ops
from chunkwise._geometry import Box
from chunkwise._source import is_url, open_source
from chunkwise._store import create_output

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SHAPE = (20, 24, 28)
CHUNKS = (8, 8, 8)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4000, SHAPE, dtype=np.uint16)


def _expected(volume: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(volume, 1.0)


def _digest(folder: Path) -> dict[str, str]:
    """Relative name -> sha256 of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path``: (folder, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_local_directory_is_read_and_never_modified(volume, tmp_path, zarr_format):
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=volume, chunks=CHUNKS, zarr_format=zarr_format)
    before = _digest(path)
    result = chunkwise.process(
        path, ops.gaussian(1), tmp_path / "out.zarr", n_jobs=2, block=CHUNKS
    )
    np.testing.assert_array_equal(result[:], _expected(volume))
    assert _digest(path) == before
    assert result.attrs["chunkwise"]["input"]["location"] == str(path)


def test_file_url_is_a_local_path(volume, tmp_path):
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=volume, chunks=CHUNKS)
    assert not is_url(f"file://{path}")
    result = chunkwise.process(f"file://{path}", ops.invert(), n_jobs=1)
    np.testing.assert_array_equal(result[:], ~volume)


def test_zip_store(volume, tmp_path):
    path = tmp_path / "in.zip"
    store = zarr.storage.ZipStore(path, mode="w")
    zarr.create_array(store, data=volume, chunks=CHUNKS)
    store.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = chunkwise.process(path, ops.gaussian(1), n_jobs=2)
    np.testing.assert_array_equal(result[:], _expected(volume))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_http_url(volume, http_root, zarr_format):
    folder, base = http_root
    zarr.create_array(
        folder / "in.zarr", data=volume, chunks=CHUNKS, zarr_format=zarr_format
    )
    url = f"{base}/in.zarr"
    assert is_url(url)
    out = folder / "out.zarr"
    result = chunkwise.process(url, ops.gaussian(1), out, n_jobs=2)
    np.testing.assert_array_equal(result[:], _expected(volume))
    assert result.attrs["chunkwise"]["input"] == {
        "location": url,
        "shape": list(SHAPE),
        "chunks": list(CHUNKS),
        "dtype": "uint16",
    }


def test_zarr_array_input(volume, tmp_path):
    array = zarr.create_array(tmp_path / "in.zarr", data=volume, chunks=CHUNKS)
    result = chunkwise.process(array, ops.gaussian(1), n_jobs=2)
    np.testing.assert_array_equal(result[:], _expected(volume))
    np.testing.assert_array_equal(array[:], volume)


def test_numpy_input_is_not_modified(volume):
    copy = volume.copy()
    result = chunkwise.process(volume, ops.gaussian(1), chunks=CHUNKS, n_jobs=2)
    np.testing.assert_array_equal(result[:], _expected(copy))
    np.testing.assert_array_equal(volume, copy)
    assert open_source(volume).chunks is None


def _ome_image(path: Path, volume: np.ndarray, zarr_format: int) -> None:
    """An NGFF image: level "0" full resolution, level "1" halved.

    Format 2 is NGFF v0.4 (``multiscales`` at the top of the attributes); format 3 is
    NGFF v0.5 (under ``ome``).
    """
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [{"type": "scale", "scale": [2.0**level] * 3}],
        }
        for level in (0, 1)
    ]
    multiscales = [{"name": "image", "axes": axes, "datasets": datasets}]
    if zarr_format == 2:
        group.attrs["multiscales"] = [multiscales[0] | {"version": "0.4"}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    group.create_array("0", shape=volume.shape, dtype=volume.dtype, chunks=CHUNKS)
    group["0"][:] = volume
    small = volume[::2, ::2, ::2]
    group.create_array("1", shape=small.shape, dtype=small.dtype, chunks=CHUNKS)
    group["1"][:] = small


@pytest.mark.parametrize("zarr_format", [2, 3], ids=["ngff-0.4", "ngff-0.5"])
def test_ome_zarr_uses_level_0(volume, tmp_path, zarr_format):
    path = tmp_path / "image.ome.zarr"
    _ome_image(path, volume, zarr_format)
    before = _digest(path)
    source = open_source(path)
    assert source.shape == SHAPE
    assert source.location == f"{path}/0"
    result = chunkwise.process(path, ops.gaussian(1), tmp_path / "out.zarr", n_jobs=2)
    np.testing.assert_array_equal(result[:], _expected(volume))
    assert result.attrs["chunkwise"]["input"]["location"] == f"{path}/0"
    assert _digest(path) == before
    # The image folder is the input as named: writing over it or into it is refused.
    for inside in (path, path / "out.zarr", path / "0" / "x"):
        with pytest.raises(chunkwise.ChunkwiseError, match="is the input or inside it"):
            chunkwise.process(path, ops.invert(), inside, overwrite=True)
    assert _digest(path) == before


def test_group_without_multiscales_names_its_arrays(volume, tmp_path):
    path = tmp_path / "group.zarr"
    group = zarr.open_group(path, mode="w")
    group.create_array("raw", shape=SHAPE, dtype="uint16", chunks=CHUNKS)
    group.create_array("labels", shape=SHAPE, dtype="uint8", chunks=CHUNKS)
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError, match="not an array") as info:
        chunkwise.process(path, ops.invert(), out)
    assert "arrays: labels, raw" in str(info.value)
    assert not out.exists()


def test_missing_and_non_zarr_inputs_are_refused(tmp_path):
    with pytest.raises(chunkwise.ChunkwiseError, match="input not found"):
        open_source(tmp_path / "absent.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(chunkwise.ChunkwiseError, match="not a readable Zarr store"):
        open_source(tmp_path / "empty")
    with pytest.raises(chunkwise.ChunkwiseError, match="cannot read list input"):
        open_source([[1, 2], [3, 4]])


def test_read_assembles_boxes_and_protects_cached_chunks(volume, tmp_path):
    array = zarr.create_array(tmp_path / "in.zarr", data=volume, chunks=CHUNKS)
    source = open_source(array, cache_bytes=2**20)
    across = Box((3, 7, 9), (19, 17, 27))
    for box in (Box.full(SHAPE), across, Box((1, 1, 1), (2, 5, 7))):
        np.testing.assert_array_equal(source.read(box), volume[box.slices])
    # A box inside one chunk is a view of the cached chunk: it must be read-only.
    assert not source.read(Box((1, 1, 1), (2, 5, 7))).flags.writeable
    # Writing into an assembled box never reaches the cache.
    source.read(across)[...] = 0
    np.testing.assert_array_equal(source.read(across), volume[across.slices])
    uncached = open_source(array, cache_bytes=0)
    np.testing.assert_array_equal(uncached.read(across), volume[across.slices])
    assert uncached.cache.loads == 0


def test_a_chunk_cut_to_its_later_reads_is_decoded_again_for_more(volume, tmp_path):
    array = zarr.create_array(tmp_path / "in.zarr", data=volume, chunks=CHUNKS)
    source = open_source(array, cache_bytes=2**20)
    chunk = Box((0, 0, 0), CHUNKS)
    np.testing.assert_array_equal(source.read(chunk), volume[chunk.slices])
    face = Box((0, 0, CHUNKS[2] - 2), CHUNKS)
    source.release(chunk, lambda box: (face, 1))
    # Only the 2-voxel face is kept, and reading it decodes nothing.
    assert source.cache.nbytes == face.size * volume.itemsize
    np.testing.assert_array_equal(source.read(face), volume[face.slices])
    assert source.cache.loads == 1
    # A read beyond the face decodes the chunk again, correctly.
    np.testing.assert_array_equal(source.read(chunk), volume[chunk.slices])
    assert source.cache.loads == 2
    source.release(chunk, lambda box: None)
    assert source.cache.nbytes == 0


def test_negative_cache_budget_is_refused(volume):
    with pytest.raises(chunkwise.ChunkwiseError, match="cache_bytes must be"):
        open_source(volume, cache_bytes=-1)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("codec", ["zstd", "blosc-zstd", "gzip", "lz4", "none"])
@pytest.mark.parametrize("dtype", ["uint8", ">u2", "<f4"])
def test_chunks_read_from_their_files_equal_zarrs_reads(
    tmp_path, zarr_format, codec, dtype
):
    data = np.random.default_rng(1).integers(0, 250, SHAPE).astype(dtype)
    array = create_output(
        LocalStore(tmp_path / "in.zarr"),
        shape=SHAPE,
        dtype=np.dtype(dtype),
        chunks=CHUNKS,
        shards=None,
        zarr_format=zarr_format,
        codec=codec,
        attributes={},
    )
    array[:] = data
    array[:8, :8, :8] = 0  # an all-fill chunk: not written
    data[:8, :8, :8] = 0
    source = open_source(tmp_path / "in.zarr")
    assert source._direct is not None
    for box in (
        Box.full(SHAPE),
        Box((3, 7, 9), (19, 24, 28)),
        Box((9,) * 3, (15,) * 3),
    ):
        read = source.read(box)
        np.testing.assert_array_equal(read, data[box.slices])
        assert read.dtype == source.dtype


def test_sharded_and_remote_arrays_are_read_by_zarr(volume, tmp_path):
    sharded = zarr.create_array(
        tmp_path / "s.zarr", data=volume, chunks=(4, 4, 4), shards=CHUNKS
    )
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), data=volume)
    for array in (sharded, in_memory):
        source = open_source(array)
        assert source._direct is None
        np.testing.assert_array_equal(source.read(Box.full(SHAPE)), volume)
