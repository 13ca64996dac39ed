"""LiveOutput: the output layer's data while a run streams."""

from __future__ import annotations

import numpy as np
import zarr

from chunkwise._geometry import Box
from chunkwise._napari._live import LiveOutput


def _live() -> LiveOutput:
    array = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(8, 6, 4), chunks=(2, 6, 4), dtype="u1"
    )
    array[:] = np.arange(8 * 6 * 4, dtype="u1").reshape(8, 6, 4)
    return LiveOutput(array)


def test_a_plane_read_is_the_view_and_the_kept_copy_serves_it():
    live = _live()
    view = (3, slice(None), slice(None))
    np.testing.assert_array_equal(live[view], live.array[3])
    assert live.view == view
    live[1, 2, 3]  # a value under the cursor: not a view
    live[:]  # a whole read, not napari's one entry per axis
    assert live.view == view

    key, data = live.read(view)
    live.array[3] = 0  # a block lands after the read
    live.keep(key, data)
    assert live[view] is data  # napari gets the copy read off the main thread
    assert live[view].sum() > 0
    live.forget()
    assert not live[view].any()


def test_shows_only_boxes_that_cross_the_view():
    live = _live()
    assert not live.shows(Box((0, 0, 0), (8, 6, 4)))  # nothing read yet
    live[3, :, :]
    assert live.shows(Box((2, 0, 0), (4, 6, 4)))
    assert not live.shows(Box((4, 0, 0), (6, 6, 4)))
    assert not live.shows(Box((0, 0, 0), (3, 6, 4)))
    live[:, -1, :]  # a plane across another axis, negative index
    assert live.shows(Box((0, 4, 0), (2, 6, 2)))
    assert not live.shows(Box((0, 0, 0), (8, 5, 4)))


def test_a_new_output_reads_as_its_fill_value_until_blocks_land():
    array = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(8, 6, 4), chunks=(2, 6, 4), dtype="u2",
        fill_value=7,
    )  # fmt: skip
    live = LiveOutput(array, empty=True)
    array[2:4] = 1  # not shown yet: nothing has been reported as written
    view = (3, slice(None), slice(None))
    np.testing.assert_array_equal(live[view], np.full((6, 4), 7, "u2"))
    assert live.view == view
    assert live[1:3, 0, :].shape == (2, 4)
    live.written()
    np.testing.assert_array_equal(live[view], np.ones((6, 4), "u2"))


class _Counted:
    """A zarr array that records the keys it is read with."""

    def __init__(self, array: zarr.Array) -> None:
        self._array = array
        self.reads: list = []

    def __getattr__(self, name: str):
        return getattr(self._array, name)

    def __getitem__(self, key):
        self.reads.append(key)
        return self._array[key]


def test_while_reads_are_deferred_a_new_view_is_never_read_where_napari_asks():
    values = _live().array
    counted = _Counted(values)
    live = LiveOutput(counted)
    view = (3, slice(None), slice(None))
    live.keep(*live.read(view))
    asked = []
    live.defer_reads(lambda: asked.append(live.view))
    counted.reads.clear()
    moved = (5, slice(None), slice(None))
    stand_in = live[moved]
    # The view read last stands in, and the caller is asked to read the new one.
    np.testing.assert_array_equal(stand_in, values[3])
    assert asked == [moved] and not counted.reads and live.view == moved
    live.keep(*live.read(moved))  # what the stream does in its thread
    np.testing.assert_array_equal(live[moved], values[5])
    assert live[1, 2, 3] == values[1, 2, 3]  # a value under the cursor: read at once
    # A view of another shape cannot stand in: read at once.
    other = (slice(None), 2, slice(None))
    np.testing.assert_array_equal(live[other], values[other])
    live.defer_reads(None)
    counted.reads.clear()
    np.testing.assert_array_equal(live[6, :, :], values[6])
    assert counted.reads  # no longer deferred: read where asked


def test_a_see_through_view_not_read_yet_stands_in_as_all_see_through():
    array = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(8, 6, 4), chunks=(2, 6, 4), dtype="u1"
    )
    array[:] = 9
    live = LiveOutput(array, unit=(2, 6, 4))
    live.landed(Box((0, 0, 0), (8, 6, 4)))
    asked = []
    live.defer_reads(lambda: asked.append(True))
    shown = live[3, :, :]
    assert shown.dtype == np.float32 and np.isnan(shown).all() and asked
    live.keep(*live.read(live.view))
    np.testing.assert_array_equal(live[3, :, :], np.full((6, 4), 9, np.float32))
