"""The reader: Zarr arrays and OME-Zarr 0.4/0.5 images open lazily, placed and typed."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import basic_indices
from napari.layers import Image, Labels
from napari.utils.notifications import NotificationSeverity, notification_manager
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._napari._lazy import READ_CACHE_BYTES, LazyArray
from chunkwise._napari._reader import get_reader, read_zarr
from chunkwise._sample import synthetic_ct
from chunkwise._source import open_source
from conftest import exact_settings

AXES = [
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]
# Level 0: scale then translation, then the image-wide scale over both.
LEVEL0 = [
    {"type": "scale", "scale": [2.0, 0.5, 0.5]},
    {"type": "translation", "translation": [1.0, 3.0, 0.0]},
]
LEVEL1 = [
    {"type": "scale", "scale": [4.0, 1.0, 1.0]},
    {"type": "translation", "translation": [2.0, 3.25, 0.25]},
]
IMAGE_WIDE = [{"type": "scale", "scale": [1.0, 2.0, 2.0]}]
WORLD_SCALE = (2.0, 1.0, 1.0)
WORLD_TRANSLATE = (1.0, 6.0, 0.0)


def write_ome(path, version: str, *, label: bool = False) -> list[np.ndarray]:
    """A two-level OME-Zarr image (NGFF 0.4 in Zarr v2, 0.5 in Zarr v3)."""
    dtype = np.uint16 if label else np.float32
    full = np.random.default_rng(1).integers(0, 9, (8, 16, 16)).astype(dtype)
    levels = [full, full[::2, ::2, ::2]]
    image = {
        "axes": AXES,
        "datasets": [
            {"path": "0", "coordinateTransformations": LEVEL0},
            {"path": "1", "coordinateTransformations": LEVEL1},
        ],
        "coordinateTransformations": IMAGE_WIDE,
    }
    ome: dict = {"multiscales": [image]}
    if label:
        ome["image-label"] = {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}]}
    if version == "0.4":
        image["version"] = "0.4"
        group = zarr.open_group(path, mode="w", zarr_format=2, attributes=ome)
    else:
        group = zarr.open_group(
            path,
            mode="w",
            zarr_format=3,
            attributes={"ome": {"version": "0.5", **ome}},
        )
    for name, level in zip(("0", "1"), levels, strict=True):
        group.create_array(name, data=level, chunks=(4, 8, 8))
    return levels


@pytest.fixture
def notifications():
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


def test_get_reader_takes_one_zarr_path_only():
    assert get_reader("a/volume.zarr") is read_zarr
    assert get_reader("a/volume.zarr/") is read_zarr
    assert get_reader("a/volume.tif") is None
    assert get_reader(["a.zarr", "b.zarr"]) is None


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_array_opens_lazily(make_napari_viewer, tmp_path, zarr_format):
    path = tmp_path / "plain.zarr"
    data = np.arange(6 * 7 * 8, dtype=np.uint16).reshape(6, 7, 8)
    zarr.create_array(path, data=data, chunks=(3, 7, 4), zarr_format=zarr_format)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert isinstance(layer, Image)
    # A view of the array itself, nothing loaded.
    assert isinstance(layer.data, LazyArray)
    assert isinstance(layer.data.array, zarr.Array)
    assert layer.name == "plain"
    np.testing.assert_array_equal(layer.data[:], data)
    np.testing.assert_array_equal(layer.scale, (1, 1, 1))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_multiscale(make_napari_viewer, tmp_path, version):
    path = tmp_path / "image.ome.zarr"
    levels = write_ome(path, version)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert isinstance(layer, Image)
    assert layer.name == "image"
    assert layer.multiscale
    assert len(layer.data) == 2
    for level, expected in zip(layer.data, levels, strict=True):
        assert isinstance(level, LazyArray)
        np.testing.assert_array_equal(level[:], expected)
    np.testing.assert_allclose(layer.scale, WORLD_SCALE)
    np.testing.assert_allclose(layer.translate, WORLD_TRANSLATE)
    assert tuple(layer.axis_labels) == ("z", "y", "x")
    assert [str(unit) for unit in layer.units] == ["micrometer"] * 3


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_label_image_opens_as_labels(make_napari_viewer, tmp_path, version):
    path = tmp_path / "cells.zarr"
    write_ome(path, version, label=True)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert isinstance(layer, Labels)
    assert layer.multiscale
    np.testing.assert_allclose(layer.scale, WORLD_SCALE)


@pytest.mark.parametrize(
    ("op", "kind"),
    [
        (ops.threshold(4), "labels"),
        (chunkwise.chain(ops.gaussian(1), ops.threshold(4)), "labels"),
        (chunkwise.chain(ops.custom("numpy:copy"), ops.threshold(4)), "labels"),
        # The input is an image of integers: kept by a label-safe step, it stays
        # an image (labels in, labels out: tests/napari/test_layer_kinds.py).
        (ops.downsample(2, method="mode"), "image"),
        (ops.downsample(2, method="nearest"), "image"),
        (chunkwise.chain(ops.threshold(4), ops.downsample(2, "mode")), "labels"),
        (ops.downsample(2, method="mean"), "image"),
        (chunkwise.chain(ops.gaussian(1), ops.downsample(2, method="mode")), "image"),
        (ops.gaussian(1), "image"),
    ],
    ids=str,
)
def test_chunkwise_output_type_from_recipe(tmp_path, op, kind):
    path = tmp_path / "out.zarr"
    volume = np.random.default_rng(2).integers(0, 9, (8, 8, 8)).astype(np.uint8)
    chunkwise.process(volume, op, path, n_jobs=1)
    [(data, _meta, layer_type)] = read_zarr(str(path))
    assert isinstance(data, LazyArray)
    assert layer_type == kind


def test_float_result_of_a_label_recipe_is_an_image(tmp_path):
    path = tmp_path / "out.zarr"
    volume = np.random.default_rng(3).uniform(size=(8, 8, 8)).astype(np.float32)
    chunkwise.process(volume, ops.downsample(2, method="mode"), path, n_jobs=1)
    assert read_zarr(str(path))[0][2] == "image"


def test_chunkwise_mask_opens_as_labels_layer(make_napari_viewer, tmp_path):
    path = tmp_path / "mask.zarr"
    volume = np.arange(4 * 6 * 6, dtype=np.uint8).reshape(4, 6, 6)
    chunkwise.process(volume, ops.threshold(50), path, n_jobs=1)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert isinstance(layer, Labels)
    assert isinstance(layer.data, LazyArray)
    np.testing.assert_array_equal(layer.data[:], volume > 50)


def test_unfinished_output_opens_with_a_warning(
    make_napari_viewer, tmp_path, notifications
):
    path = tmp_path / "partial.zarr"
    volume = np.ones((32, 32, 32), np.uint8)
    run = chunkwise.iter_process(
        volume, ops.invert(), path, chunks=(8, 8, 8), block=(8, 8, 8), n_jobs=1
    )
    next(run)
    run.close()
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert layer.data.shape == (32, 32, 32)
    [warning] = notifications
    assert warning.severity == NotificationSeverity.WARNING
    assert "unfinished" in warning.message
    assert "cancelled" in warning.message


def _file(tmp_path):
    path = tmp_path / "file.zarr"
    path.write_text("not zarr")
    return path


def _empty_dir(tmp_path):
    path = tmp_path / "empty.zarr"
    path.mkdir()
    return path


def _broken_metadata(tmp_path):
    path = tmp_path / "broken.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{not json")
    return path


def _plain_group(tmp_path):
    path = tmp_path / "group.zarr"
    group = zarr.open_group(path, mode="w")
    group.create_array("raw", shape=(4, 4), dtype="uint8")
    return path


def _bad_transform(tmp_path):
    path = tmp_path / "skewed.zarr"
    write_ome(path, "0.5")
    group = zarr.open_group(path, mode="r+")
    attrs = group.attrs.asdict()
    attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"] = [
        {"type": "scale", "scale": [1.0, 1.0]}
    ]
    group.attrs.put(attrs)
    return path


def _bad_scale_attribute(tmp_path):
    path = tmp_path / "odd.zarr"
    array = zarr.create_array(path, shape=(4, 4), dtype="uint8")
    array.update_attributes({"napari": {"scale": [1.0, 2.0, 3.0]}})
    return path


BAD = {
    "file": (_file, "not a directory"),
    "empty directory": (_empty_dir, "no Zarr array or group there"),
    "broken metadata": (_broken_metadata, "its Zarr metadata is not valid JSON"),
    "plain group": (_plain_group, "open one of its arrays instead (arrays: raw)"),
    "bad transform": (_bad_transform, "OME-Zarr scale [1.0, 1.0] is not 3 values"),
    "bad scale": (_bad_scale_attribute, "its scale [1.0, 2.0, 3.0] does not have 2"),
}


def assert_one_error(notifications, path, reason):
    [error] = notifications
    assert error.severity == NotificationSeverity.ERROR
    assert error.message.startswith(f"Cannot open {path}: ")
    assert reason in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("case", BAD)
def test_unreadable_path_notifies(tmp_path, notifications, case):
    make, reason = BAD[case]
    path = make(tmp_path)
    # napari's "read, but nothing to add" value: no layer and no exception.
    assert read_zarr(str(path)) == [(None,)]
    assert_one_error(notifications, path, reason)


def test_missing_path_notifies(tmp_path, notifications):
    path = tmp_path / "missing.zarr"
    assert read_zarr(str(path)) == [(None,)]
    assert_one_error(notifications, path, "no such file or directory")


def test_viewer_open_of_unreadable_path_adds_nothing(
    make_napari_viewer, tmp_path, notifications
):
    path = _plain_group(tmp_path)
    viewer = make_napari_viewer()
    assert viewer.open(str(path), plugin="chunkwise") == []
    assert len(viewer.layers) == 0
    assert_one_error(notifications, path, "open one of its arrays instead")


@pytest.fixture(scope="module")
def pyramid_outputs(tmp_path_factory):
    """chunkwise OME-Zarr outputs: a Gaussian (3 levels), a mask, a region run."""
    folder = tmp_path_factory.mktemp("pyramids")
    volume = np.random.default_rng(2).integers(0, 200, (24, 40, 40), dtype=np.uint8)
    paths = {name: folder / f"{name}.ome.zarr" for name in ("image", "mask", "part")}
    chunkwise.process(volume, ops.gaussian(1), paths["image"], levels=3, n_jobs=1)
    chunkwise.process(volume, ops.threshold(100), paths["mask"], levels=2, n_jobs=1)
    chunkwise.process(
        volume,
        ops.gaussian(1),
        paths["part"],
        levels=2,
        chunks=(8, 8, 8),
        block=(8, 8, 8),
        region=(slice(0, 8),),
        n_jobs=1,
    )
    return volume, paths


def test_chunkwise_pyramids_open_as_multiscale_layers(
    make_napari_viewer, pyramid_outputs, notifications
):
    volume, paths = pyramid_outputs
    viewer = make_napari_viewer()
    [image] = viewer.open(str(paths["image"]), plugin="chunkwise")
    [mask] = viewer.open(str(paths["mask"]), plugin="chunkwise")
    assert isinstance(image, Image) and image.multiscale
    assert [level.shape for level in image.data] == [
        (24, 40, 40),
        (12, 20, 20),
        (6, 10, 10),
    ]
    np.testing.assert_array_equal(np.asarray(image.data[0]), ops.gaussian(1)(volume))
    assert isinstance(mask, Labels) and mask.multiscale
    np.testing.assert_array_equal(np.asarray(mask.data[0]), volume > 100)
    assert notifications == []
    viewer.open(str(paths["part"]), plugin="chunkwise")
    [warning] = notifications
    assert "unfinished" in warning.message and "partial" in warning.message


def test_napari_ome_zarr_opens_chunkwise_pyramids(make_napari_viewer, pyramid_outputs):
    volume, paths = pyramid_outputs
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(paths["image"]), plugin="napari-ome-zarr")
    assert isinstance(layer, Image) and layer.multiscale
    assert len(layer.data) == 3
    expected = ops.gaussian(1)(volume)
    np.testing.assert_array_equal(np.asarray(layer.data[0]), expected)
    np.testing.assert_array_equal(
        np.asarray(layer.data[1]), ops.downsample(2)(expected)
    )
    # Placed as chunkwise places it: level 1's voxels centred on their windows.
    np.testing.assert_allclose(layer.level_shapes[1], (12, 20, 20))


# --- LazyArray: the reader's layers read through chunkwise ---------------------------

#: Chunk key layouts: zarr format, key encoding (nested "/" or flat ".").
LAYOUTS = {
    "v3 nested": (3, {"name": "default", "separator": "/"}),
    "v3 flat": (3, {"name": "default", "separator": "."}),
    "v2 flat": (2, {"name": "v2", "separator": "."}),
    "v2 nested": (2, {"name": "v2", "separator": "/"}),
}
SPARSE_SHAPE = (20, 23, 17)
FILL = 7


def write_sparse(path, layout: str, dtype=np.uint16) -> zarr.Array:
    """Chunks of (3, 5, 4); only two corners written, the rest is the fill value."""
    zarr_format, encoding = LAYOUTS[layout]
    array = zarr.create_array(
        path,
        shape=SPARSE_SHAPE,
        chunks=(3, 5, 4),
        dtype=dtype,
        fill_value=FILL,
        zarr_format=zarr_format,
        chunk_key_encoding=encoding,
    )
    data = np.random.default_rng(4).integers(10, 200, SPARSE_SHAPE).astype(dtype)
    array[0:6, 0:10, 0:8] = data[0:6, 0:10, 0:8]
    array[18:20, 20:23, 12:17] = data[18:20, 20:23, 12:17]
    return array


@pytest.fixture(scope="module", params=LAYOUTS)
def sparse(request, tmp_path_factory) -> zarr.Array:
    return write_sparse(tmp_path_factory.mktemp("sparse") / "s.zarr", request.param)


KEYS = [
    (),
    (slice(None),),
    (3,),
    (-1, -1, -1),
    (3, slice(None, None, 2)),
    (slice(1, 19, 3), slice(None, None, -2), 4),
    (Ellipsis, slice(2, None, 5)),
    (slice(None, None, -1),),
    (np.int64(2), Ellipsis, 3),
    (slice(20, 2, -7), slice(None), slice(16, None, -16)),
    (slice(None, None, 9), slice(None, None, 11), slice(None, None, 100)),
    (slice(5, 5), 2),
]


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_lazy_array_reads_as_zarr(sparse, key):
    reference = sparse[:]
    expected = reference[key]
    got = np.asarray(LazyArray(sparse)[key])
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    if all(getattr(k, "step", 1) in (1, None) for k in key if k is not Ellipsis):
        np.testing.assert_array_equal(got, sparse[key])  # zarr itself, no negatives


@given(data=st.data())
@exact_settings(60)
def test_lazy_array_views_compose_like_numpy(sparse, data):
    reference, view = sparse[:], LazyArray(sparse)
    for _ in range(data.draw(st.integers(1, 3))):
        if reference.ndim == 0:
            break
        key = data.draw(basic_indices(reference.shape, allow_ellipsis=True))
        reference, view = reference[key], view[key]
        np.testing.assert_array_equal(np.asarray(view), reference)
        assert np.shape(view) == reference.shape


def test_lazy_array_reads_never_written_chunks_as_fill_without_decoding(tmp_path):
    array = write_sparse(tmp_path / "s.zarr", "v3 nested")
    lazy = LazyArray(array)
    cache = lazy.source.cache
    loads = cache.loads
    # Chunk rows 1 and 2 along y hold nothing from z 6 on: every chunk is missing.
    np.testing.assert_array_equal(lazy[6:18], FILL)
    assert cache.loads == loads
    assert lazy[19, 0, 0] == FILL
    # Only the chunks that exist are decoded, once.
    np.testing.assert_array_equal(np.asarray(lazy), array[:])
    assert cache.loads - loads == 2 * 2 * 2 + 1 * 1 * 2
    np.testing.assert_array_equal(lazy[:3, ::2], array[:3, ::2])
    assert cache.loads - loads == 10


def test_lazy_slices_read_nothing_until_used(tmp_path):
    lazy = LazyArray(write_sparse(tmp_path / "s.zarr", "v3 nested"))
    loads = lazy.source.cache.loads
    tile = lazy[:, 2:9, 1:7]  # how napari cuts a multiscale level to its tile
    assert isinstance(tile, LazyArray)
    assert tile.shape == (20, 7, 6) and len(tile) == 20 and tile.size == 20 * 42
    assert lazy.source.cache.loads == loads
    plane = tile[1]
    assert isinstance(plane, np.ndarray) and plane.shape == (7, 6)
    assert lazy.source.cache.loads - loads == 2 * 2  # 2 chunk rows x 2 columns


def test_chunkwise_processes_the_array_behind_a_layer(tmp_path):
    array = write_sparse(tmp_path / "s.zarr", "v3 nested")
    lazy = LazyArray(array)
    opened = open_source(lazy)
    assert opened.array is array
    assert opened.location == str(array.store_path)
    # With the preview's budget, the preview reads through the layer's own cache.
    assert open_source(lazy, cache_bytes=READ_CACHE_BYTES) is lazy.source
    plane = chunkwise.compute_region(lazy, ops.gaussian(1), (3, slice(None)))
    np.testing.assert_array_equal(plane, ops.gaussian(1)(array[:])[3])
    # A part of it is processed as the part it is.
    part = chunkwise.process(lazy[2:9, ::-2], ops.invert(), n_jobs=1)
    np.testing.assert_array_equal(part[:], ops.invert()(array[:][2:9, ::-2]))
    # Resume checks the input's files, as for the array itself.
    target = tmp_path / "out.zarr"
    run = chunkwise.iter_process(
        lazy, ops.gaussian(1), target, chunks=(4, 8, 8), block=(4, 8, 8), n_jobs=1
    )
    next(run)
    run.close()
    done = chunkwise.process(lazy, ops.gaussian(1), target, resume=True, n_jobs=1)
    np.testing.assert_array_equal(done[:], ops.gaussian(1)(array[:]))


def test_slider_decodes_only_the_chunks_of_the_new_plane(make_napari_viewer, tmp_path):
    path = tmp_path / "slab.zarr"
    array = zarr.create_array(
        path, shape=(32, 48, 48), chunks=(8, 16, 16), dtype=np.uint8, fill_value=9
    )
    volume = np.random.default_rng(5).integers(0, 200, (32, 32, 32), dtype=np.uint8)
    array[:, :32, :32] = volume  # 2 x 2 of the 3 x 3 chunks of each slab
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    assert tuple(layer.contrast_limits) == (0, 255)  # uint8: no sample read
    cache = layer.data.source.cache

    def shows(z: int) -> int:
        viewer.dims.set_current_step(0, z)
        shown = layer._slice.image.raw
        np.testing.assert_array_equal(shown[:32, :32], volume[z])
        np.testing.assert_array_equal(shown[32:], 9)
        np.testing.assert_array_equal(shown[:, 32:], 9)
        return cache.loads

    # Slabs of 8 planes: napari read planes 0 and 15 while adding the layer.
    loads = shows(17)
    assert shows(21) == loads  # the same chunks: nothing decoded
    assert shows(29) == loads + 4  # a new slab: its 4 stored chunks only
    assert shows(24) == shows(3) == loads + 4


def test_layers_get_contrast_limits_from_a_sample_of_stored_chunks(
    make_napari_viewer, tmp_path
):
    path = tmp_path / "u16.zarr"
    array = zarr.create_array(
        path, shape=(4, 600, 600), chunks=(4, 16, 16), dtype=np.uint16
    )
    # Data off centre only: the sample finds the stored chunks nearest the centre.
    values = np.arange(40 * 60, dtype=np.uint16).reshape(40, 60)
    array[:, 300:340, 200:260] = np.broadcast_to(values, (4, 40, 60))
    [layer] = make_napari_viewer().open(str(path), plugin="chunkwise")
    low, high = layer.contrast_limits
    assert low == 0 and 2000 < high <= 40 * 60 - 1
    # Nothing stored near the centre: the dtype's range.
    empty = zarr.create_array(
        tmp_path / "empty.zarr", shape=(4, 600, 600), chunks=(4, 16, 16), dtype="i2"
    )
    [(_, meta, _)] = read_zarr(str(empty.store_path.store.root))
    assert meta["contrast_limits"] == (-32768.0, 32767.0)


def test_ome_zarr_levels_read_lazily_and_exactly(make_napari_viewer, tmp_path):
    levels = write_ome(tmp_path / "image.ome.zarr", "0.5")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "image.ome.zarr"), plugin="chunkwise")
    assert [level.source.cache.max_bytes for level in layer.data] == [
        READ_CACHE_BYTES,
        READ_CACHE_BYTES // 4,
    ]
    for level, expected in zip(layer.data, levels, strict=True):
        np.testing.assert_array_equal(
            np.asarray(level[1:, ::3, ::-2]), expected[1:, ::3, ::-2]
        )
    # float32: limits from the stored values of the coarsest level.
    assert tuple(layer.contrast_limits) == (levels[1].min(), levels[1].max())


def test_widget_runs_and_previews_a_layer_opened_by_the_reader(
    make_napari_viewer, qtbot, tmp_path
):
    small = synthetic_ct((48, 64, 64), seed=5)
    path = tmp_path / "ct.zarr"
    zarr.create_array(path, data=small, chunks=(16, 32, 32))
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="chunkwise")
    _, widget = viewer.window.add_plugin_dock_widget("chunkwise", "Process volume")
    step = widget.steps.steps[0]
    step.op_name.value = "gaussian"
    step.fields["sigma"].value = 2.0
    expected = ndimage.gaussian_filter(small, 2.0)

    viewer.dims.set_current_step(0, 17)
    widget.preview.value = True

    def previews(z: int) -> bool:
        preview = widget._preview.layer
        return (
            preview is not None
            and preview.data.shape == (1, 64, 64)
            and np.array_equal(preview.data[0], expected[z])
        )

    qtbot.waitUntil(lambda: previews(17), timeout=20_000)
    viewer.dims.set_current_step(0, 40)
    qtbot.waitUntil(lambda: previews(40), timeout=20_000)
    widget.preview.value = False

    widget.output.value = tmp_path / "out.zarr"
    widget.run_button.clicked.emit()
    qtbot.waitUntil(
        lambda: widget.stream is not None and not widget.stream.running,
        timeout=120_000,
    )
    written = zarr.open_array(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(written[:], expected)
    assert written.attrs["chunkwise"]["status"] == "complete"
    assert layer.data.array.store_path.store.root == path
