"""`scale=` and `translation=`: an OME-Zarr output placed where the caller says."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr_models.v05.image import Image as NgffImage

import chunkwise
from chunkwise import ops


def _level0(group: zarr.Group) -> tuple[list[float], list[float]]:
    transforms = group.attrs["ome"]["multiscales"][0]["datasets"][0][
        "coordinateTransformations"
    ]
    return transforms[0]["scale"], transforms[1]["translation"]


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(1).random((12, 20, 24), dtype=np.float32)


def test_scale_and_translation_are_recorded_and_composed(tmp_path, volume):
    out = tmp_path / "down.zarr"
    chunkwise.process(
        volume,
        ops.downsample(2),
        out,
        format="ome-zarr",
        scale=(3.0, 0.5, 0.25),
        translation=(10.0, -2.0, 0.0),
        n_jobs=1,
    )
    group = zarr.open_group(out, mode="r")
    scale, translation = _level0(group)
    # A 2x window of voxels: twice the scale, centred on the window.
    assert scale == [6.0, 1.0, 0.5]
    assert translation == [11.5, -1.75, 0.125]
    # Valid NGFF 0.5, by a validating reader.
    image = NgffImage.from_zarr(group)
    datasets = image.ome_attributes.multiscales[0].datasets
    assert datasets[0].path == "0"


def test_they_replace_the_inputs_own_metadata(tmp_path, volume):
    first = tmp_path / "first.ome.zarr"
    chunkwise.process(volume, ops.copy(), first, scale=(2.0, 2.0, 2.0), n_jobs=1)
    again = tmp_path / "again.ome.zarr"
    chunkwise.process(first, ops.copy(), again, translation=(1.0, 1.0, 1.0), n_jobs=1)
    scale, translation = _level0(zarr.open_group(again, mode="r"))
    assert scale == [2.0, 2.0, 2.0]  # kept from the input
    assert translation == [1.0, 1.0, 1.0]  # replaced


def test_without_them_an_array_is_unit_voxels_at_the_origin(tmp_path, volume):
    out = tmp_path / "plain.ome.zarr"
    chunkwise.process(volume, ops.copy(), out, n_jobs=1)
    assert _level0(zarr.open_group(out, mode="r")) == ([1.0] * 3, [0.0] * 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": (1.0, 1.0)}, r"one number per axis of the input \(3\)"),
        ({"scale": (1.0, 0.0, 1.0)}, "scale must be positive"),
        ({"translation": (0.0, float("nan"), 0.0)}, "translation must be finite"),
        ({"scale": "1,1,1"}, "one number per axis"),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(
    tmp_path, volume, kwargs, message
):
    out = tmp_path / "bad.zarr"
    with pytest.raises(chunkwise.ChunkwiseError, match=message):
        chunkwise.process(volume, ops.copy(), out, format="ome-zarr", **kwargs)
    assert not out.exists()


def test_a_plain_array_output_refuses_them(tmp_path, volume):
    with pytest.raises(chunkwise.ChunkwiseError, match="need format='ome-zarr'"):
        chunkwise.process(volume, ops.copy(), tmp_path / "a.zarr", scale=(1, 1, 1))
    assert not (tmp_path / "a.zarr").exists()
