"""Regions in tiles: iter_region and compute_region against scipy, cancelling, reads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

import chunkwise
import chunkwise._region
from chunkwise import ops
from chunkwise._geometry import Box
from chunkwise._source import open_source
from conftest import exact_settings

VOLUME = np.random.default_rng(11).integers(0, 256, (10, 70, 90), dtype=np.uint8)
SMOOTH = ndimage.gaussian_filter(VOLUME, 1.5)


def _tiles_cover(region: Box, tiles) -> None:
    """The tiles fill ``region`` exactly once."""
    count = np.zeros(region.shape, np.int32)
    for tile in tiles:
        count[tile.box.relative_to(region)] += 1
    assert (count == 1).all()


@exact_settings(30)
@given(
    start=st.tuples(*(st.integers(0, n - 1) for n in VOLUME.shape)),
    size=st.tuples(*(st.integers(1, n) for n in VOLUME.shape)),
    tile_voxels=st.integers(40, 3000),
    n_jobs=st.sampled_from([1, 2, 3]),
)
def test_tiles_cover_the_region_once_and_equal_scipy(start, size, tile_voxels, n_jobs):
    stop = tuple(int(n) for n in np.minimum(np.add(start, size), VOLUME.shape))
    region = Box(start, stop)
    middle = tuple((a + b - 1) // 2 for a, b in zip(start, stop, strict=True))
    tiles = list(
        chunkwise.iter_region(
            VOLUME, ops.gaussian(1.5), region, n_jobs=n_jobs, tile_voxels=tile_voxels
        )
    )
    _tiles_cover(region, tiles)
    for done, tile in enumerate(tiles, 1):
        assert tile.box.size <= tile_voxels
        assert (tile.done, tile.total) == (done, len(tiles))
        np.testing.assert_array_equal(tile.data, SMOOTH[tile.box.slices])
        # What the finished tiles cover is a box of finished values, around the
        # region's middle voxel.
        if tile.covered is not None:
            finished = [t.box for t in tiles[:done]]
            inside = [b for b in finished if tile.covered.contains(b)]
            assert sum(b.size for b in inside) == tile.covered.size
            assert tile.covered.contains(Box(middle, tuple(m + 1 for m in middle)))
    assert tiles[-1].covered == region


@pytest.mark.parametrize(
    "op",
    [
        ops.gaussian(2.0),
        ops.median(3),
        chunkwise.chain(ops.gaussian(1.0), ops.downsample(2)),
        ops.upsample(2),
    ],
    ids=["gaussian", "median", "gaussian-downsample", "upsample"],
)
def test_compute_region_in_tiles_equals_the_whole_array(op, tmp_path):
    array = zarr.create_array(tmp_path / "in.zarr", data=VOLUME, chunks=(4, 16, 16))
    whole = op(VOLUME)
    plane = (whole.shape[0] // 2, slice(None), slice(None))
    for n_jobs in (1, 2):
        part = chunkwise.compute_region(
            array, op, plane, n_jobs=n_jobs, tile_voxels=500
        )
        np.testing.assert_array_equal(part, whole[plane])
    block = (slice(1, 4), slice(3, 40), slice(10, 30))
    part = chunkwise.compute_region(array, op, block, tile_voxels=77)
    np.testing.assert_array_equal(part, whole[block])


def test_tile_voxels_is_checked():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(chunkwise.ChunkwiseError, match="tile_voxels"):
            chunkwise.iter_region(VOLUME, ops.invert(), (0,), tile_voxels=bad)
    with pytest.raises(chunkwise.ChunkwiseError, match="does not fit"):
        chunkwise.iter_region(VOLUME, ops.invert(), Box((0, 0, 0), (11, 1, 1)))


class _SlowTiles:
    """Stands in for the evaluator: records each tile's times, sleeps in each."""

    def __init__(self, monkeypatch, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[tuple[Box, float, float]] = []
        #: Tiles begun, finished or not.
        self.started = 0
        self._lock = threading.Lock()
        real = chunkwise._region.evaluate

        def slow(op, shape, dtype, read, box):
            with self._lock:
                self.started += 1
            began = time.perf_counter()
            time.sleep(self.seconds)
            data = real(op, shape, dtype, read, box)
            with self._lock:
                self.calls.append((box, began, time.perf_counter()))
            return data

        monkeypatch.setattr(chunkwise._region, "evaluate", slow)


def test_a_cancelled_region_stops_within_one_tile(monkeypatch):
    slow = _SlowTiles(monkeypatch, 0.1)
    token = chunkwise.CancelToken()
    tiles = chunkwise.iter_region(
        VOLUME, ops.gaussian(1.0), (5,), n_jobs=2, cancel=token, tile_voxels=200
    )
    first = next(tiles)
    assert first.total > 20
    token.cancel()
    begun = slow.started
    with pytest.raises(chunkwise.Cancelled, match="of"):
        list(tiles)
    time.sleep(0.3)  # any tile still running has finished by now
    # No tile began after the cancel but those already handed to a job (at most
    # one more per job, taken as the cancel came): not the rest of the region.
    assert slow.started <= begun + 2
    assert slow.started < first.total


def test_closing_the_iterator_does_not_wait_for_tiles_in_flight(monkeypatch):
    slow = _SlowTiles(monkeypatch, 0.5)
    tiles = chunkwise.iter_region(
        VOLUME, ops.gaussian(1.0), (5,), n_jobs=2, tile_voxels=200
    )
    next(tiles)
    tiles.close()
    # Closed while tiles were still computing (each takes 0.5 s): not waited for.
    assert slow.started > len(slow.calls)
    time.sleep(0.6)
    assert len(slow.calls) <= 1 + 2 * 2 + 2


def test_compute_region_cancelled_raises():
    token = chunkwise.CancelToken()
    token.cancel()
    with pytest.raises(chunkwise.Cancelled):
        chunkwise.compute_region(VOLUME, ops.invert(), (1,), cancel=token)


def test_never_written_chunks_read_as_the_fill_value(tmp_path):
    array = zarr.create_array(
        tmp_path / "sparse.zarr",
        shape=(8, 64, 64),
        chunks=(8, 16, 16),
        dtype="uint16",
        fill_value=7,
    )
    array[:, 16:32, 16:48] = VOLUME[:8, :16, :32]
    dense = np.asarray(array[:])
    op = ops.gaussian(2.0)
    np.testing.assert_array_equal(
        chunkwise.compute_region(array, op, (4,)),
        ndimage.gaussian_filter(dense, 2.0)[4],
    )
    read = open_source(array).read(Box((0, 0, 0), (8, 16, 16)))
    assert (read == 7).all() and not read.flags.writeable


def test_regions_share_the_cache_of_one_open_array(tmp_path):
    array = zarr.create_array(tmp_path / "in.zarr", data=VOLUME, chunks=(10, 10, 10))
    budget = 2**20 + 1  # one cache for this array and budget
    for plane in (3, 4, 6):
        list(
            chunkwise.iter_region(
                array, ops.gaussian(1.0), (plane,), cache_bytes=budget
            )
        )
    cache = open_source(array, cache_bytes=budget).cache
    # Every plane reads the same 10-deep chunks: each was decoded once.
    assert cache.loads == 7 * 9
