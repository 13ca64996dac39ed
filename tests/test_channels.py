"""Channels, colours and time points: operations act on the space axes only.

The reference is scipy.ndimage (or numpy) on each channel's 2D or 3D array apart,
never chunkwise itself, for several chunkings, chunks spanning channels included.
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops
from conftest import reference_downsample


def _repeat(x: np.ndarray, k: int) -> np.ndarray:
    for axis in range(x.ndim):
        x = x.repeat(k, axis)
    return x


#: Operation and its whole-array reference on one channel's space axes.
OPS = {
    "gaussian": (ops.gaussian(1.5), lambda x: ndimage.gaussian_filter(x, 1.5)),
    "gaussian-wrap": (
        ops.gaussian(1, mode="wrap"),
        lambda x: ndimage.gaussian_filter(x, 1, mode="wrap"),
    ),
    "median": (ops.median(3), lambda x: ndimage.median_filter(x, 3)),
    "maximum": (ops.maximum(3), lambda x: ndimage.maximum_filter(x, 3)),
    "laplace": (
        ops.laplace_of_gaussian(1),
        lambda x: ndimage.gaussian_laplace(x, 1),
    ),
    "downsample": (ops.downsample(2), lambda x: reference_downsample(x, 2, "mean")),
    "upsample": (ops.upsample(2), lambda x: _repeat(x, 2)),
    "chain": (
        chunkwise.chain(ops.gaussian(1), ops.downsample(2, method="max")),
        lambda x: reference_downsample(ndimage.gaussian_filter(x, 1), 2, "max"),
    ),
}

#: Axes, the shape of an input with them, and chunkings (some span channels).
LAYOUTS = {
    "yxc": ((23, 31, 3), [(8, 8, 1), (8, 16, 2), (23, 31, 3)]),
    "cyx": ((3, 23, 31), [(1, 8, 8), (2, 8, 16), (3, 23, 31)]),
    "tyx": ((4, 19, 22), [(3, 8, 8), (1, 19, 5)]),
    "zyxc": ((9, 12, 13, 4), [(4, 8, 8, 3), (9, 12, 13, 1)]),
    "tcyx": ((2, 3, 17, 18), [(2, 2, 8, 8), (1, 1, 17, 18)]),
}


def per_channel(reference, array: np.ndarray, axes: str) -> np.ndarray:
    """``reference`` on each 2D or 3D array of ``array``'s space axes apart."""
    space = [i for i, a in enumerate(axes) if a in "zyx"]
    others = [i for i in range(array.ndim) if i not in space]
    moved = np.moveaxis(array, others, range(len(others)))
    results = [
        reference(moved[index]) for index in np.ndindex(moved.shape[: len(others)])
    ]
    stacked = np.stack(results).reshape(*moved.shape[: len(others)], *results[0].shape)
    return np.moveaxis(stacked, range(len(others)), others)


def volume(shape, dtype="uint16", seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-100, 100, shape).astype(dtype)
    return rng.integers(0, 60000, shape).astype(dtype)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("axes", LAYOUTS)
def test_each_channel_equals_scipy_on_its_own(name, axes):
    op, reference = OPS[name]
    shape, chunkings = LAYOUTS[axes]
    array = volume(shape, "float32" if name == "laplace" else "uint16")
    expected = per_channel(reference, array, axes)
    for chunks in chunkings:
        result = chunkwise.process(array, op, chunks=chunks, n_jobs=2, axes=axes)
        np.testing.assert_array_equal(result[:], expected, err_msg=str(chunks))


def test_colours_never_bleed():
    # One pure red pixel: a Gaussian spreads red around it, and green stays 0.
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[16, 16] = (255, 0, 0)
    result = chunkwise.process(rgb, ops.gaussian(2), chunks=(8, 8, 3), axes="yxc")
    assert result[16, 16, 0] > 0
    assert result[..., 1:].max() == 0


def test_without_axes_the_colour_axis_is_filtered_as_space():
    # The reason for axes: as a 3D volume, RGB mixes its colours.
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[16, 16] = (255, 0, 0)
    assert chunkwise.process(rgb, ops.gaussian(2))[..., 1:].max() > 0


@pytest.mark.parametrize("axes", ["yxc", "cyx", "tcyx"])
def test_region_equals_the_run(axes):
    shape, _ = LAYOUTS[axes]
    array = volume(shape, "float32", seed=3)
    op = chunkwise.chain(ops.gaussian(1), ops.downsample(2))
    whole = chunkwise.process(array, op, axes=axes)[:]
    region = tuple(slice(1, n - 1) if n > 2 else slice(0, n) for n in whole.shape)
    part = chunkwise.compute_region(array, op, region, axes=axes, tile_voxels=40)
    np.testing.assert_array_equal(part, whole[region])


def test_plan_and_operation_keep_channels():
    plan = chunkwise.plan(
        np.zeros((3, 40, 60), np.uint8), ops.downsample(2), axes="cyx"
    )
    assert plan.shape == (3, 20, 30)
    assert plan.op.voxel_scale(3) == (1.0, 2.0, 2.0)


def test_wrapped_operation_round_trips_its_record():
    op = ops.on_axes(chunkwise.chain(ops.median(3), ops.downsample(2)), (0, 1))
    record = op.to_dict()
    assert [step["spatial_axes"] for step in record["steps"]] == [[0, 1], [0, 1]]
    assert ops.from_dict(record) == op


def test_default_axes_leave_the_operation_as_it_is():
    # czyx: space is last already; the operations handle the channel axis.
    array = volume((2, 6, 7, 8), "float32")
    result = chunkwise.process(array, ops.gaussian(1), chunks=(2, 4, 4, 4), axes="czyx")
    expected = per_channel(lambda x: ndimage.gaussian_filter(x, 1), array, "czyx")
    np.testing.assert_array_equal(result[:], expected)
    plan = chunkwise.plan(array, ops.gaussian(1), axes="czyx")
    assert plan.op == ops.gaussian(1)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ("zyx", "names 3 axes; the data has 4"),
        ("cyxq", "has q"),
        ("cyyx", "names an axis twice"),
        ("tcxq", "has q"),
        (4, "axes must be text"),
    ],
)
def test_bad_axes_are_refused_naming_them(axes, message):
    with pytest.raises(chunkwise.ChunkwiseError, match=message):
        chunkwise.process(np.zeros((2, 3, 8, 8), np.uint8), ops.copy(), axes=axes)


def test_one_space_axis_is_refused():
    with pytest.raises(chunkwise.ChunkwiseError, match="2 or 3 space axes"):
        chunkwise.process(np.zeros((2, 3, 8), np.uint8), ops.copy(), axes="tcx")


def test_axes_with_a_parameter_per_space_axis():
    array = volume((20, 24, 3), "float32")
    op = ops.gaussian((1.0, 2.0))
    result = chunkwise.process(array, op, chunks=(8, 8, 2), axes="yxc")
    expected = per_channel(lambda x: ndimage.gaussian_filter(x, (1, 2)), array, "yxc")
    np.testing.assert_array_equal(result[:], expected)
    with pytest.raises(chunkwise.ChunkwiseError, match="2 spatial axes"):
        chunkwise.process(array, ops.gaussian((1.0, 2.0, 3.0)), axes="yxc")


# --- axes from OME-Zarr metadata -------------------------------------------------


def write_ngff(path, array: np.ndarray, axes: str) -> None:
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    types = {"t": "time", "c": "channel"}
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": a, "type": types.get(a, "space")} for a in axes],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0] * array.ndim}
                        ],
                    }
                ],
            }
        ],
    }
    level = group.create_array(
        "0", shape=array.shape, dtype=array.dtype, chunks=(1, 8, 8)
    )
    level[:] = array


def test_axes_are_read_from_ome_zarr_metadata(tmp_path):
    array = volume((3, 21, 19), "uint16")
    write_ngff(tmp_path / "cells.ome.zarr", array, "cyx")
    op, reference = OPS["median"]
    result = chunkwise.process(tmp_path / "cells.ome.zarr", op, chunks=(2, 8, 8))
    np.testing.assert_array_equal(result[:], per_channel(reference, array, "cyx"))
    region = chunkwise.compute_region(tmp_path / "cells.ome.zarr", op, (1,))
    np.testing.assert_array_equal(region, ndimage.median_filter(array[1], 3))


def test_axes_contradicting_the_metadata_are_refused(tmp_path):
    write_ngff(tmp_path / "cells.ome.zarr", volume((3, 16, 16)), "cyx")
    with pytest.raises(chunkwise.ChunkwiseError, match="contradict the input's"):
        chunkwise.process(tmp_path / "cells.ome.zarr", ops.copy(), axes="zyx")
    # Saying what the metadata says is fine.
    chunkwise.process(tmp_path / "cells.ome.zarr", ops.copy(), axes="cyx")


def test_ome_zarr_output_carries_the_axes(tmp_path):
    array = volume((3, 20, 20), "uint16")
    out = tmp_path / "out.ome.zarr"
    chunkwise.process(array, ops.downsample(2), out, axes="cyx", levels=1)
    image = zarr.open_group(str(out), mode="r").attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in image["axes"]] == ["c", "y", "x"]
    assert [a["type"] for a in image["axes"]] == ["channel", "space", "space"]
    scale = image["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [1.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("axes", "shape", "chunks"),
    [
        ("yxc", (300, 260, 3), (64, 64, 2)),
        ("cyx", (2, 300, 270), (1, 64, 64)),
        ("tcyx", (2, 2, 40, 36), (1, 2, 8, 8)),
    ],
)
def test_pyramid_halves_space_only_channel_by_channel(tmp_path, axes, shape, chunks):
    array = volume(shape, "uint16", seed=4)
    out = tmp_path / "o.ome.zarr"
    op = ops.gaussian(1)
    levels = 3
    chunkwise.process(array, op, out, axes=axes, chunks=chunks, levels=levels, n_jobs=2)
    group = zarr.open_group(str(out), mode="r")
    level = per_channel(lambda x: ndimage.gaussian_filter(x, 1), array, axes)
    np.testing.assert_array_equal(group["0"][:], level)
    for index in range(1, levels):
        level = per_channel(lambda x: reference_downsample(x, 2, "mean"), level, axes)
        np.testing.assert_array_equal(group[str(index)][:], level, err_msg=str(index))
    image = group.attrs["ome"]["multiscales"][0]
    assert "".join(a["name"] for a in image["axes"]) == axes


def test_command_line_takes_axes(tmp_path, capsys):
    from chunkwise.cli import main

    rgb = volume((20, 24, 3), "uint8")
    zarr.save_array(str(tmp_path / "in.zarr"), rgb)
    args = ["run", str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")]
    assert main([*args, "--op", "gaussian:sigma=2", "--axes", "yxc", "--quiet"]) == 0
    expected = per_channel(lambda x: ndimage.gaussian_filter(x, 2), rgb, "yxc")
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "out.zarr")[:], expected)
    assert main([*args[:2], str(tmp_path / "o2.zarr"), "--axes", "yxq"]) == 2
    assert "axes 'yxq' has q" in capsys.readouterr().err
