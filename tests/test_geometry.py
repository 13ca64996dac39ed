"""Boxes, chunk grids and the split of wrapped boxes, by hand and by hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chunkwise._geometry import (
    Box,
    ceil_div,
    chunk_boxes,
    spatial_axes,
    wrapped_pieces,
)


def test_box_shape_size_slices_and_json():
    box = Box((1, 2, 3), (4, 6, 8))
    assert box.shape == (3, 4, 5)
    assert box.size == 60
    assert box.slices == (slice(1, 4), slice(2, 6), slice(3, 8))
    assert box.to_json() == [[1, 2, 3], [4, 6, 8]]
    assert Box.full((5, 6)) == Box((0, 0), (5, 6))
    assert Box.full(np.array([5, 6])).stop == (5, 6)


def test_box_grow_clip_and_relative_to():
    box = Box((2, 0, 5), (4, 3, 9))
    grown = box.grow((1, 2, 3))
    assert grown == Box((1, -2, 2), (5, 5, 12))
    assert grown.clip((10, 4, 10)) == Box((1, 0, 2), (5, 4, 10))
    # A box cut out of an array that covers a larger box.
    outer = Box((1, 0, 2), (5, 4, 10))
    array = np.arange(np.prod(outer.shape)).reshape(outer.shape)
    assert box.relative_to(outer) == (slice(1, 3), slice(0, 3), slice(3, 7))
    assert array[box.relative_to(outer)].shape == box.shape


def test_box_is_a_frozen_hashable_value():
    assert Box((0,), (1,)) == Box((0,), (1,))
    assert len({Box((0,), (1,)), Box((0,), (1,))}) == 1
    with pytest.raises(AttributeError):
        Box((0,), (1,)).start = (1,)  # type: ignore[misc]


def test_ceil_div_and_spatial_axes():
    assert [ceil_div(a, 4) for a in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert spatial_axes(2) == (0, 1)
    assert spatial_axes(3) == (0, 1, 2)
    assert spatial_axes(5) == (2, 3, 4)


def test_chunk_boxes_clips_the_last_chunk():
    found = dict(chunk_boxes(Box((3, 0), (9, 5)), (4, 5), (10, 5)))
    assert found == {
        (0, 0): Box((0, 0), (4, 5)),
        (1, 0): Box((4, 0), (8, 5)),
        (2, 0): Box((8, 0), (10, 5)),
    }


def test_chunk_boxes_of_a_box_inside_one_chunk():
    assert list(chunk_boxes(Box((5, 5), (6, 7)), (4, 4), (8, 8))) == [
        ((1, 1), Box((4, 4), (8, 8)))
    ]


def test_wrapped_pieces_of_a_box_inside_yields_itself():
    box = Box((1, 2), (3, 4))
    assert list(wrapped_pieces(box, (5, 5))) == [(box, Box((0, 0), (2, 2)))]


def test_wrapped_pieces_on_both_sides_of_one_axis():
    pieces = list(wrapped_pieces(Box((-2, 0), (7, 3)), (5, 3)))
    assert pieces == [
        (Box((3, 0), (5, 3)), Box((0, 0), (2, 3))),
        (Box((0, 0), (5, 3)), Box((2, 0), (7, 3))),
        (Box((0, 0), (2, 3)), Box((7, 0), (9, 3))),
    ]


def test_wrapped_pieces_reproduce_numpy_wrap_padding():
    data = np.arange(4 * 5).reshape(4, 5)
    box = Box((-3, -7), (6, 9))
    assembled = np.full(box.shape, -1)
    for source, target in wrapped_pieces(box, data.shape):
        assembled[target.slices] = data[source.slices]
    expected = np.pad(data, ((3, 2), (7, 4)), mode="wrap")
    np.testing.assert_array_equal(assembled, expected)


@st.composite
def _box_and_shape(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    start = tuple(draw(st.integers(-15, 15)) for _ in range(ndim))
    stop = tuple(a + draw(st.integers(1, 20)) for a in start)
    return Box(start, stop), shape


@given(_box_and_shape())
def test_wrapped_pieces_tile_the_box_exactly(case):
    box, shape = case
    cover = np.zeros(box.shape, np.int64)
    data = np.arange(int(np.prod(shape))).reshape(shape)
    assembled = np.empty(box.shape, np.int64)
    for source, target in wrapped_pieces(box, shape):
        assert source.clip(shape) == source and source.size > 0
        assert target.shape == source.shape
        cover[target.slices] += 1
        assembled[target.slices] = data[source.slices]
    assert (cover == 1).all()
    # Each voxel holds the input at its position modulo the shape (periodic).
    grids = np.meshgrid(
        *(
            np.arange(a, b) % n
            for a, b, n in zip(box.start, box.stop, shape, strict=True)
        ),
        indexing="ij",
    )
    np.testing.assert_array_equal(assembled, data[tuple(grids)])


@given(_box_and_shape(), st.data())
def test_chunk_boxes_cover_the_clipped_box_once(case, data):
    box, shape = case
    box = box.clip(shape)
    if box.size <= 0 or any(a >= b for a, b in zip(box.start, box.stop, strict=True)):
        return
    chunks = tuple(data.draw(st.integers(1, 4)) for _ in shape)
    cover = np.zeros(shape, np.int64)
    for index, chunk in chunk_boxes(box, chunks, shape):
        assert chunk.start == tuple(i * c for i, c in zip(index, chunks, strict=True))
        assert chunk.clip(shape) == chunk
        cover[chunk.slices] += 1
    assert (cover <= 1).all()
    assert (cover[box.slices] == 1).all()
