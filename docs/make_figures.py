"""Figures for the documentation, drawn from real runs of chunkwise.

Run from the repository root with ``.venv/bin/python docs/make_figures.py``. It
writes docs/images/geometry-*.png (How it works: which input box each output block
reads, from `chunkwise.plan`), docs/images/tutorial-*.png (Tutorial: each step run
with `chunkwise.process` and compared with scipy/numpy on the whole array) and
docs/images/figures.json, the numbers those figures show. tests/test_docs.py
recomputes the numbers and fails when a figure is out of date.

The volume is the heart scan in ../shared/data/hoa_heart.zarr (relative to the
repository), or the generated sample when that is absent.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

DOCS = Path(__file__).resolve().parent
IMAGES = DOCS / "images"
HEART = DOCS.parents[1] / "shared" / "data" / "hoa_heart.zarr"
RECORD = IMAGES / "figures.json"

#: The plane the geometry figures are drawn on, its chunks and work blocks.
CHUNKS = (32, 32)
GEOMETRY = {
    "pointwise": ops.clip(60, 200),
    "downsample": ops.downsample(2),
    "upsample": ops.upsample(2),
    "halo": ops.gaussian(4),
}

#: The custom kernel of the tutorial: a 3x3x3 edge detector (a Laplacian with
#: diagonal neighbours), in float32 so that negative responses survive.
EDGES = -np.ones((3, 3, 3))
EDGES[1, 1, 1] = 26
TUTORIAL = {
    "clip": ops.clip(60, 200),
    "downsample": ops.downsample(2),
    "upsample": ops.upsample(2),
    "gaussian": ops.gaussian(2),
    "convolve": ops.convolve(EDGES.tolist(), dtype="float32"),
}


#: What each tutorial step is compared with, as the figure names it.
REFERENCES = {
    "clip": "np.clip",
    "downsample": "numpy window means",
    "upsample": "np.repeat",
    "gaussian": "scipy gaussian_filter",
    "convolve": "scipy convolve",
}


def volume() -> tuple[str, np.ndarray]:
    """The heart when ../shared is present, else the generated sample; its data."""
    if HEART.exists():
        return "hoa_heart.zarr", zarr.open_array(HEART, mode="r")[:]
    from chunkwise._sample import synthetic_ct

    return "generated sample", synthetic_ct((120, 120, 139), seed=0)


def reference(name: str, data: np.ndarray) -> np.ndarray:
    """What numpy or scipy gives for tutorial step ``name`` on the whole array."""
    if name == "clip":
        return np.clip(data, 60, 200)
    if name == "downsample":
        return window_means(data, 2)
    if name == "upsample":
        return data.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    if name == "gaussian":
        return ndimage.gaussian_filter(data, 2)
    if name == "convolve":
        return ndimage.convolve(data, EDGES, output=np.float32)
    raise ValueError(name)


def window_means(data: np.ndarray, factor: int) -> np.ndarray:
    """Downsample's definition, in numpy: means over ``factor``-wide windows.

    A partial window at the far edge is averaged over its voxels only; integer
    means are rounded half to even.
    """
    sums, counts = data.astype(np.float64), np.ones(data.shape)
    for axis, n in enumerate(data.shape):
        starts = np.arange(0, n, factor)
        sums = np.add.reduceat(sums, starts, axis=axis)
        counts = np.add.reduceat(counts, starts, axis=axis)
    return np.round(sums / counts).astype(data.dtype)


# -------------------------------------------------------------------- geometry


def geometry_boxes(op: ops.Operation, shape: tuple[int, ...]) -> dict:
    """The plan of ``op`` on a plane of ``shape``: its grid and the shown block."""
    plan = chunkwise.plan(np.zeros(shape, np.uint8), op, chunks=CHUNKS, block=CHUNKS)
    # The block in the middle of the output.
    shown = [n // 2 for n in plan.grid]
    block = plan.block(shown[0] * plan.grid[1] + shown[1])
    return {
        "operation": op.to_dict(),
        "input_shape": list(shape),
        "output_shape": list(plan.shape),
        "blocks": len(plan),
        "shown": shown,
        "block": [list(block.box.start), list(block.box.stop)],
        "input_box": [list(block.input_box.start), list(block.input_box.stop)],
    }


def draw_geometry(name: str, op: ops.Operation, plane: np.ndarray) -> dict:
    """Input and output planes with the shown block and the input box it reads."""
    boxes = geometry_boxes(op, plane.shape)
    output = chunkwise.process(plane, op, chunks=CHUNKS, block=CHUNKS)[:]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    _plane(left, plane, f"input {_size(plane.shape)}")
    _plane(right, output, f"output {_size(output.shape)}")
    _grid(right, output.shape, "output chunks")
    _box(left, boxes["input_box"], "tab:orange", "input box read")
    if name == "halo":
        _box(left, boxes["block"], "tab:blue", "the block's own place", fill=False)
    _box(right, boxes["block"], "tab:blue", f"output block {tuple(boxes['shown'])}")
    figure.suptitle(f"{_label(op)}: {boxes['blocks']} blocks of {CHUNKS} chunks")
    for axes in (left, right):
        axes.legend(loc="lower left", fontsize=8, framealpha=0.9)
    figure.tight_layout()
    figure.savefig(IMAGES / f"geometry-{name}.png", dpi=90)
    plt.close(figure)
    return boxes


def _plane(axes: plt.Axes, data: np.ndarray, title: str) -> None:
    low, high = np.percentile(data, [0.5, 99.5])
    axes.imshow(data, cmap="gray", interpolation="nearest", vmin=low, vmax=high)
    axes.set_title(title)
    axes.set_xlabel("x")
    axes.set_ylabel("y")


def _grid(axes: plt.Axes, shape: tuple[int, ...], label: str) -> None:
    for y in range(0, shape[0] + 1, CHUNKS[0]):
        axes.axhline(y - 0.5, color="tab:green", lw=0.6)
    for x in range(0, shape[1] + 1, CHUNKS[1]):
        axes.axvline(x - 0.5, color="tab:green", lw=0.6)
    axes.plot([], [], color="tab:green", lw=0.6, label=label)


def _box(axes: plt.Axes, box: list, colour: str, label: str, fill: bool = True):
    (y0, x0), (y1, x1) = box
    axes.add_patch(
        Rectangle(
            (x0 - 0.5, y0 - 0.5),
            x1 - x0,
            y1 - y0,
            facecolor=colour if fill else "none",
            alpha=0.45 if fill else 1.0,
            edgecolor=colour,
            lw=2,
            ls="-" if fill else "--",
            label=f"{label} {_extent(box)}",
        )
    )


def _extent(box: list) -> str:
    (y0, x0), (y1, x1) = box
    return f"[{y0}:{y1}, {x0}:{x1}]"


def _size(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def _label(op: ops.Operation) -> str:
    shown = {k: v for k, v in op.to_dict().items() if k not in ("op", "mode", "cval")}
    if "kernel" in shown:
        shown["kernel"] = _size(np.shape(shown["kernel"]))
    return f"{op.name}({', '.join(f'{k}={v}' for k, v in shown.items())})"


# -------------------------------------------------------------------- tutorial


def draw_step(name: str, data: np.ndarray, folder: Path) -> dict:
    """Run one tutorial step over a Zarr copy of the volume; compare; draw it."""
    op = TUTORIAL[name]
    source = folder / "volume.zarr"
    if not source.exists():
        zarr.create_array(
            source, shape=data.shape, chunks=(64, 64, 64), dtype=data.dtype
        )[:] = data
    out = chunkwise.process(source, op, folder / f"{name}.zarr", chunks=(32, 32, 32))
    result = out[:]
    expected = reference(name, data)
    difference = np.abs(result.astype(np.float64) - expected.astype(np.float64))
    figure, panels = plt.subplots(1, 3, figsize=(12, 4.2))
    _plane(panels[0], data[data.shape[0] // 2], f"input, z={data.shape[0] // 2}")
    z = result.shape[0] // 2
    _plane(panels[1], result[z], f"chunkwise, z={z} of {_size(result.shape)}")
    panels[2].imshow(difference[z], cmap="magma", vmin=0, vmax=1)
    panels[2].set_title(f"|chunkwise - {REFERENCES[name]}|: max {difference.max():g}")
    figure.suptitle(_label(op))
    figure.tight_layout()
    figure.savefig(IMAGES / f"tutorial-{name}.png", dpi=80)
    plt.close(figure)
    return {
        "operation": op.to_dict(),
        "input_shape": list(data.shape),
        "output_shape": list(result.shape),
        "output_dtype": str(result.dtype),
        "identical": bool(np.array_equal(result, expected)),
    }


def main() -> None:
    """Write every figure and figures.json."""
    IMAGES.mkdir(exist_ok=True)
    name, data = volume()
    plane = data[data.shape[0] // 2]
    record: dict = {"volume": name, "geometry": {}, "tutorial": {}}
    for figure, op in GEOMETRY.items():
        record["geometry"][figure] = draw_geometry(figure, op, plane)
    with tempfile.TemporaryDirectory() as folder:
        for step in TUTORIAL:
            record["tutorial"][step] = draw_step(step, data, Path(folder))
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote the figures of {name} and {RECORD}")


if __name__ == "__main__":
    main()
