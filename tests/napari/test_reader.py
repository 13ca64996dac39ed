"""The reader: Zarr arrays and OME-Zarr 0.4/0.5 images open lazily, placed and typed."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from napari.layers import Image, Labels
from napari.utils.notifications import NotificationSeverity, notification_manager

import chunkwise
from chunkwise import ops
from chunkwise._napari._reader import get_reader, read_zarr

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
    assert isinstance(layer.data, zarr.Array)  # the array itself, nothing loaded
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
        assert isinstance(level, zarr.Array)
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
        (ops.downsample(2, method="mode"), "labels"),
        (ops.downsample(2, method="nearest"), "labels"),
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
    assert isinstance(data, zarr.Array)
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
    assert isinstance(layer.data, zarr.Array)
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
