"""One tool on one job, in a process of its own; prints one JSON line.

``python benchmarks/_worker.py TOOL INPUT OUTPUT CHUNKS STEP [STEP ...]``, where
CHUNKS is the output chunk shape (``64,64,64``) and each STEP a chunkwise op spec.
run.py starts this and measures the whole process from outside (wall, CPU, peak
RSS); the JSON adds the time spent on the job itself, imports excluded.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time

import numpy as np
import zarr
import zarr.codecs
from _jobs import CODEC_LEVEL, WORKERS, gaussian_radius, mean_downsample, parse_step


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
    return usage.ru_utime + usage.ru_stime


def _create(path: str, shape, dtype, chunks) -> zarr.Array:
    return zarr.create_array(
        path,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compressors=zarr.codecs.ZstdCodec(level=CODEC_LEVEL),
        fill_value=0,
        zarr_format=3,
        overwrite=True,
    )


def _scipy_step(data: np.ndarray, spec: str) -> np.ndarray:
    import scipy.ndimage as ndi

    name, p = parse_step(spec)
    if name == "gaussian":
        return ndi.gaussian_filter(data, float(p["sigma"]))
    if name == "median":
        return ndi.median_filter(data, int(p["size"]))
    if name == "rank_filter":
        return ndi.rank_filter(data, int(p["rank"]), int(p["size"]))
    if name == "convolve":
        return ndi.convolve(data, np.load(p["kernel"]))
    return mean_downsample(data, int(p["factor"]))


def _dask_image_step(image, spec: str):
    import dask.array as da
    from dask_image import ndfilters

    name, p = parse_step(spec)
    if name == "gaussian":
        return ndfilters.gaussian_filter(image, float(p["sigma"]))
    if name == "median":
        return ndfilters.median_filter(image, int(p["size"]))
    if name == "rank_filter":
        return ndfilters.rank_filter(image, int(p["rank"]), int(p["size"]))
    if name == "convolve":
        return ndfilters.convolve(image, np.load(p["kernel"]))
    k = int(p["factor"])
    # dask-image has no downsampling; coarsen is what a dask user reaches for.
    means = da.coarsen(np.mean, image, dict.fromkeys(range(3), k))
    return da.rint(means).astype(image.dtype)


def _map_overlap_step(image, spec: str):
    import dask.array as da
    import scipy.ndimage as ndi

    name, p = parse_step(spec)
    if name == "gaussian":
        sigma = float(p["sigma"])
        func, kwargs = ndi.gaussian_filter, {"sigma": sigma}
        depth = gaussian_radius(sigma)
    elif name == "median":
        size = int(p["size"])
        func, depth, kwargs = ndi.median_filter, size // 2, {"size": size}
    elif name == "rank_filter":
        size = int(p["size"])
        func, depth = ndi.rank_filter, size // 2
        kwargs = {"rank": int(p["rank"]), "size": size}
    elif name == "convolve":
        weights = np.load(p["kernel"])
        func, kwargs = ndi.convolve, {"weights": weights}
        depth = tuple(n // 2 for n in weights.shape)  # odd lengths, origin 0
    else:
        k = int(p["factor"])
        chunks = tuple(tuple(c // k for c in axis) for axis in image.chunks)
        return image.map_blocks(mean_downsample, k, chunks=chunks, dtype=image.dtype)
    return da.map_overlap(
        func, image, depth=depth, boundary="none", dtype=image.dtype, **kwargs
    )


def run_limit(src: str, dst: str, chunks, steps) -> dict:
    """Read all, compute on the whole array, write all; CPU time of each part."""
    c0 = _cpu()
    data = zarr.open_array(src, mode="r")[...]
    c1 = _cpu()
    for spec in steps:
        data = _scipy_step(data, spec)
    c2 = _cpu()
    _create(dst, data.shape, data.dtype, chunks)[...] = data
    c3 = _cpu()
    parts = {"read_cpu_s": c1 - c0, "compute_cpu_s": c2 - c1, "write_cpu_s": c3 - c2}
    parts["limit_s"] = (c3 - c0) / WORKERS
    return parts


def run_chunkwise(src: str, dst: str, chunks, steps) -> dict:
    import chunkwise
    from chunkwise import ops

    op = chunkwise.chain(*(ops.parse(spec) for spec in steps))
    if len(op.steps) == 1:  # as the CLI does
        op = op.steps[0]
    chunkwise.process(src, op, dst, n_jobs=WORKERS, chunks=chunks, overwrite=True)
    return {}


def run_dask(tool: str, src: str, dst: str, chunks, steps) -> dict:
    import dask
    import dask.array as da

    step = _dask_image_step if tool == "dask-image" else _map_overlap_step
    result = da.from_zarr(src)
    for spec in steps:
        result = step(result, spec)
    with dask.config.set(scheduler="threads", num_workers=WORKERS):
        result.rechunk(chunks).to_zarr(
            dst,
            mode="w",
            compressors=zarr.codecs.ZstdCodec(level=CODEC_LEVEL),
            fill_value=0,
            zarr_format=3,
        )
    return {}


# Imported before the clock starts, and only what the tool needs: the peak RSS of a
# chunkwise process must not include dask.
_MODULES = {
    "limit": ("scipy.ndimage",),
    "chunkwise-api": ("chunkwise",),
    "dask-image": ("dask.array", "dask_image.ndfilters"),
    "dask": ("dask.array", "scipy.ndimage"),
}


def main(argv: list[str]) -> None:
    tool, src, dst, chunk_text, *steps = argv
    chunks = tuple(int(c) for c in chunk_text.split(","))
    for module in _MODULES[tool]:
        importlib.import_module(module)
    wall, cpu = time.perf_counter(), _cpu()
    if tool == "limit":
        extra = run_limit(src, dst, chunks, steps)
    elif tool == "chunkwise-api":
        extra = run_chunkwise(src, dst, chunks, steps)
    else:
        extra = run_dask(tool, src, dst, chunks, steps)
    record = {"work_wall_s": time.perf_counter() - wall, "work_cpu_s": _cpu() - cpu}
    print(json.dumps(record | extra), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
