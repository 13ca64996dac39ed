"""Baseline benchmark: 3-D Gaussian filtering of a Zarr volume with dask.

Standalone script (no dependency on ``chunkwise``) that measures how long
dask-image and plain ``dask.array.map_overlap`` take to Gaussian-filter a
512^3 ``uint8`` Zarr v3 volume, and checks that their output is bit-identical
to ``scipy.ndimage.gaussian_filter`` applied to the whole in-memory array.

Subcommands
-----------
make OUTPUT
    Write a deterministic 512^3 uint8 test volume (gaussian blobs plus noise,
    ``numpy.random.default_rng(0)``) as a Zarr v3 array with 64^3 chunks and
    zstd (level 3) compression. Generated slab by slab (< ~100 MB of RAM).
dask-image INPUT OUTPUT
    ``dask_image.ndfilters.gaussian_filter(da.from_zarr(INPUT), sigma=2)``
    written with ``.to_zarr(OUTPUT, overwrite=True)``, threads scheduler,
    ``num_workers=2``.
dask-map-overlap INPUT OUTPUT
    ``da.map_overlap(scipy.ndimage.gaussian_filter, ..., depth=8,
    boundary="none", sigma=2)``, written and scheduled as above.
check INPUT OUTPUT
    Verify OUTPUT equals ``scipy.ndimage.gaussian_filter(INPUT, sigma=2)``
    bit for bit. Exit status 1 on mismatch.
scipy INPUT
    Time ``scipy.ndimage.gaussian_filter`` on the whole in-memory array
    (single core; reading the input is not timed).

The tool subcommands print one JSON line with ``tool``, ``wall_s``, ``cpu_s``
(user + system time of the process, all threads) and ``peak_rss_mb``
(``ru_maxrss`` of the process at exit, so it includes interpreter and
imports). Run each in its own process, e.g.::

    python benchmarks/baseline_dask_image.py make /tmp/bench/in512.zarr
    python benchmarks/baseline_dask_image.py dask-image \
        /tmp/bench/in512.zarr /tmp/bench/out_dask_image.zarr
    python benchmarks/baseline_dask_image.py check \
        /tmp/bench/in512.zarr /tmp/bench/out_dask_image.zarr
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import dask
import dask.array as da
import numpy as np
import scipy.ndimage as ndi
import zarr
import zarr.codecs
from dask_image.ndfilters import gaussian_filter

SHAPE = (512, 512, 512)
CHUNKS = (64, 64, 64)
SIGMA = 2.0
TRUNCATE = 4.0
HALO = int(TRUNCATE * SIGMA + 0.5)  # scipy's kernel radius: 8
NUM_WORKERS = 2
N_BLOBS = 24
SUB_SLAB = 16  # planes generated at once (16 * 512 * 512 * 4 B = 16 MB)


def _compressors() -> zarr.codecs.ZstdCodec:
    return zarr.codecs.ZstdCodec(level=3)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(tool: str, wall_s: float, cpu_s: float) -> None:
    record = {
        "tool": tool,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    print(json.dumps(record), flush=True)


def _gauss(coord: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.exp(-((coord - center) ** 2) / (2.0 * width**2))


def make_volume(path: str) -> None:
    """Write the deterministic test volume to ``path`` (Zarr v3)."""
    rng = np.random.default_rng(0)
    nz, ny, nx = SHAPE
    # Blob parameters are drawn first, so the noise stream below is fixed.
    centers = rng.uniform(0, 512, size=(N_BLOBS, 3))
    widths = rng.uniform(8, 48, size=N_BLOBS)
    amps = rng.uniform(60, 180, size=N_BLOBS)

    y = np.arange(ny, dtype=np.float64)
    x = np.arange(nx, dtype=np.float64)
    # Each blob is separable: amp * g(z) * g(y) * g(x). The (y, x) factor is
    # precomputed per blob (N_BLOBS * 1 MB).
    planes = [
        np.outer(
            _gauss(y, centers[i, 1], widths[i]), _gauss(x, centers[i, 2], widths[i])
        ).astype(np.float32)
        for i in range(N_BLOBS)
    ]

    out = zarr.create_array(
        store=path,
        shape=SHAPE,
        chunks=CHUNKS,
        dtype=np.uint8,
        compressors=_compressors(),
        zarr_format=3,
        overwrite=True,
    )
    slab = np.empty((CHUNKS[0], ny, nx), dtype=np.uint8)
    for z0 in range(0, nz, CHUNKS[0]):
        for s0 in range(0, CHUNKS[0], SUB_SLAB):
            z = np.arange(z0 + s0, z0 + s0 + SUB_SLAB, dtype=np.float64)
            acc = rng.standard_normal((SUB_SLAB, ny, nx), dtype=np.float32)
            acc *= 12.0
            acc += 30.0
            for i in range(N_BLOBS):
                ez = (amps[i] * _gauss(z, centers[i, 0], widths[i])).astype(np.float32)
                if ez.max() < 1e-3:
                    continue
                acc += ez[:, None, None] * planes[i]
            np.clip(acc, 0, 255, out=acc)
            slab[s0 : s0 + SUB_SLAB] = np.rint(acc)
        out[z0 : z0 + CHUNKS[0]] = slab
    print(f"wrote {path}: shape={SHAPE} chunks={CHUNKS} dtype=uint8 zstd(3)")


def _run_dask(tool: str, src: str, dst: str) -> None:
    t_wall = time.perf_counter()
    t_cpu = _cpu_s()
    image = da.from_zarr(src)
    if tool == "dask-image":
        result = gaussian_filter(image, sigma=SIGMA)
    else:
        result = da.map_overlap(
            ndi.gaussian_filter,
            image,
            depth=HALO,
            boundary="none",
            dtype=image.dtype,
            sigma=SIGMA,
        )
    with dask.config.set(scheduler="threads", num_workers=NUM_WORKERS):
        result.to_zarr(dst, overwrite=True, compressors=_compressors())

    _report(tool, time.perf_counter() - t_wall, _cpu_s() - t_cpu)


def check(src: str, dst: str) -> bool:
    """Compare ``dst`` with scipy's whole-array Gaussian filter of ``src``."""
    image = zarr.open_array(src, mode="r")[...]
    got = zarr.open_array(dst, mode="r")[...]
    expected = ndi.gaussian_filter(image, sigma=SIGMA)
    ok = got.shape == expected.shape and got.dtype == expected.dtype
    n_diff = int(np.count_nonzero(got != expected)) if ok else -1
    max_diff = (
        int(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max())
        if ok
        else -1
    )
    ok = ok and n_diff == 0
    status = "PASS" if ok else "FAIL"
    print(
        f"{status}: {dst} vs scipy.ndimage.gaussian_filter(sigma={SIGMA}) "
        f"shape={got.shape} dtype={got.dtype} differing_voxels={n_diff} "
        f"max_abs_diff={max_diff}"
    )
    return ok


def time_scipy(src: str) -> None:
    """Time scipy's Gaussian filter on the whole in-memory volume."""
    image = zarr.open_array(src, mode="r")[...]
    t_wall = time.perf_counter()
    t_cpu = _cpu_s()
    ndi.gaussian_filter(image, sigma=SIGMA)
    _report("scipy-whole-array", time.perf_counter() - t_wall, _cpu_s() - t_cpu)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one subcommand."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make").add_argument("output")
    for name in ("dask-image", "dask-map-overlap", "check"):
        p = sub.add_parser(name)
        p.add_argument("input")
        p.add_argument("output")
    sub.add_parser("scipy").add_argument("input")
    args = parser.parse_args(argv)

    if args.cmd == "make":
        make_volume(args.output)
    elif args.cmd == "check":
        return 0 if check(args.input, args.output) else 1
    elif args.cmd == "scipy":
        time_scipy(args.input)
    else:
        _run_dask(args.cmd, args.input, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
