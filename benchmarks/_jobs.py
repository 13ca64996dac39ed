"""What the benchmark runs: inputs, jobs, tools and the output layout they share.

A job is a list of chunkwise operation specs (the CLI's ``--op`` syntax). Every tool
builds its own implementation from those specs, so one table row is one job done
five ways. Each spec is translated here for dask-image, dask ``map_overlap`` and
whole-array scipy/numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODEC_LEVEL = 1  # chunkwise's default: zstd level 1; the dask tools write the same
WORKERS = 2

TOOLS = ("limit", "chunkwise-api", "chunkwise-cli", "dask-image", "dask")


@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    dtype: str


@dataclass(frozen=True)
class Job:
    key: str
    title: str
    input: str
    steps: tuple[str, ...]
    large: bool = False
    #: Rounds of every tool, in rotated order; each tool's median is reported. The
    #: machines are shared: the same run varied by up to 30% within minutes.
    repeats: int = 1


def inputs(quick: bool) -> dict[str, Input]:
    """The generated volumes, by name. Quick mode: 64^3 (128^3 for the large job)."""
    u8, u16, large, c = (64, 64, 128, 16) if quick else (512, 256, 1024, 64)
    return {
        "u8": Input("u8", (u8,) * 3, (c,) * 3, "uint8"),
        "u16": Input("u16", (u16,) * 3, (c,) * 3, "uint16"),
        "u8-large": Input("u8-large", (large,) * 3, (c,) * 3, "uint8"),
    }


JOBS = (
    Job("a", "gaussian sigma=2", "u8", ("gaussian:sigma=2",), repeats=3),
    Job("b", "median size=3 (uint16)", "u16", ("median:size=3",), repeats=3),
    Job("c", "downsample x2 mean", "u8", ("downsample:factor=2,method=mean",)),
    Job(
        "d",
        "gaussian sigma=1 -> downsample x2",
        "u8",
        ("gaussian:sigma=1", "downsample:factor=2,method=mean"),
    ),
    Job("e", "gaussian sigma=2, large", "u8-large", ("gaussian:sigma=2",), large=True),
)

# Whole-array scipy on (e) would hold the 1 GiB input, its float passes and the
# output at once: the thing this benchmark exists to avoid. (e) is checked against
# dask-image instead, chunk by chunk. (e) measures how chunkwise scales; the CLI and
# dask map_overlap, already compared on (a) with the same operation, would add
# about three minutes on 2 cores and push the whole run past 10 minutes.
TOOLS_LARGE = ("chunkwise-api", "dask-image")


def parse_step(spec: str) -> tuple[str, dict[str, str]]:
    """``"gaussian:sigma=2"`` -> ``("gaussian", {"sigma": "2"})``."""
    name, _, params = spec.partition(":")
    return name, dict(item.split("=") for item in params.split(",") if item)


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """scipy's kernel radius for ``gaussian_filter``."""
    return int(truncate * sigma + 0.5)


def mean_downsample(block: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor``^3 windows, rounded half to even, in the input dtype.

    float32 is exact here: a window sum of 8 uint16 values stays below 2**24.
    """
    nz, ny, nx = (n // factor for n in block.shape)
    windows = block.reshape(nz, factor, ny, factor, nx, factor)
    means = windows.mean(axis=(1, 3, 5), dtype=np.float32)
    return np.rint(means).astype(block.dtype)
