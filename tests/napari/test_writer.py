"""The writer: layers round-trip through Zarr; lazy layers are saved block by block."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr
from napari.layers import Image, Labels

import chunkwise
from chunkwise._napari._writer import write_zarr

RNG = np.random.default_rng(7)
VOLUME = RNG.integers(0, 200, (20, 24, 28)).astype(np.uint16)
LABELS = RNG.integers(0, 5, (20, 24, 28)).astype(np.int32)
PLACE = {"scale": (2.0, 0.5, 0.25), "translate": (1.0, -3.0, 4.5)}


def numpy_image(tmp_path):
    return VOLUME, Image


def dask_image(tmp_path):
    return da.from_array(VOLUME, chunks=(8, 8, 8)), Image


def zarr_image(tmp_path):
    array = zarr.create_array(tmp_path / "input.zarr", data=VOLUME, chunks=(8, 8, 8))
    return zarr.open_array(array.store_path.store.root, mode="r"), Image


def multiscale_image(tmp_path):
    return [VOLUME, VOLUME[::2, ::2, ::2]], Image


def numpy_labels(tmp_path):
    return LABELS, Labels


LAYERS = [numpy_image, dask_image, zarr_image, multiscale_image, numpy_labels]


def add(viewer, data, kind):
    add_layer = viewer.add_labels if kind is Labels else viewer.add_image
    return add_layer(data, name="saved", axis_labels=("z", "y", "x"), **PLACE)


@pytest.mark.parametrize("make", LAYERS, ids=lambda make: make.__name__)
def test_round_trip(make_napari_viewer, tmp_path, make):
    data, kind = make(tmp_path)
    viewer = make_napari_viewer()
    layer = add(viewer, data, kind)
    path = tmp_path / "saved.zarr"
    assert viewer.layers.save(str(path), plugin="chunkwise") == [str(path)]
    viewer.layers.clear()
    [read] = viewer.open(str(path), plugin="chunkwise")
    assert type(read) is kind
    assert isinstance(read.data.array, zarr.Array)  # read lazily, through chunkwise
    level0 = data[0] if isinstance(data, list) else data
    np.testing.assert_array_equal(read.data[:], np.asarray(level0))
    assert read.data.dtype == layer.dtype
    np.testing.assert_allclose(read.scale, PLACE["scale"])
    np.testing.assert_allclose(read.translate, PLACE["translate"])
    assert read.name == "saved"
    assert tuple(read.axis_labels) == ("z", "y", "x")
    if kind is Image:
        np.testing.assert_allclose(read.contrast_limits, layer.contrast_limits)


class RecordingArray:
    """A lazy array that remembers the size of every read."""

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.chunksize = (8, 8, 8)
        self.reads = []

    def __getitem__(self, index):
        out = self.data[index]
        self.reads.append(out.size)
        return out


def test_lazy_layer_is_never_read_whole(tmp_path):
    lazy = RecordingArray(VOLUME)
    [written] = write_zarr(str(tmp_path / "out.zarr"), lazy, {"name": "lazy"})
    np.testing.assert_array_equal(zarr.open_array(written, mode="r")[:], VOLUME)
    assert len(lazy.reads) > 1
    assert max(lazy.reads) < VOLUME.size


def test_saving_again_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.zarr"
    write_zarr(str(path), VOLUME, {})
    write_zarr(str(path), LABELS, {"features": {}})
    saved = zarr.open_array(path, mode="r")
    np.testing.assert_array_equal(saved[:], LABELS)
    assert saved.attrs["napari"] == {"layer_type": "labels"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


@pytest.mark.parametrize("wrap", [lambda a: a, da.from_zarr], ids=["zarr", "dask"])
def test_saving_a_lazy_layer_onto_its_own_file_keeps_the_data(tmp_path, wrap):
    # A dask array hides which file it reads; writing beside the target and moving
    # the copy into place keeps the data whichever way the layer reads it.
    path = tmp_path / "volume.zarr"
    zarr.create_array(path, data=VOLUME, chunks=(8, 8, 8))
    layer_data = wrap(zarr.open_array(path, mode="r"))
    write_zarr(str(path), layer_data, {"name": "again"})
    saved = zarr.open_array(path, mode="r")
    np.testing.assert_array_equal(saved[:], VOLUME)
    assert saved.attrs["napari"]["name"] == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["volume.zarr"]


def test_refuses_to_write_inside_the_input(tmp_path):
    path = tmp_path / "volume.zarr"
    source = zarr.create_array(path, data=VOLUME, chunks=(8, 8, 8))
    with pytest.raises(chunkwise.ChunkwiseError, match="is the input or inside it"):
        write_zarr(str(path / "copy.zarr"), source, {})
    assert sorted(p.name for p in path.iterdir()) == ["c", "zarr.json"]


def _folder(path):
    path.mkdir()
    (path / "notes.txt").write_text("keep me")


def _ome_group(path):
    zarr.open_group(path, mode="w").create_array("0", data=VOLUME)


@pytest.mark.parametrize("make", [_folder, _ome_group], ids=["folder", "group"])
def test_refuses_to_replace_anything_but_an_array(tmp_path, make):
    path = tmp_path / "existing.zarr"
    make(path)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    with pytest.raises(chunkwise.ChunkwiseError, match="is not a Zarr array"):
        write_zarr(str(path), VOLUME, {})
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["existing.zarr"]


def test_failed_save_keeps_the_earlier_file_and_leaves_no_scratch(tmp_path):
    path = tmp_path / "out.zarr"
    write_zarr(str(path), VOLUME, {})
    with pytest.raises(chunkwise.ChunkwiseError, match="float16"):
        write_zarr(str(path), VOLUME.astype(np.float16), {})
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], VOLUME)
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]
