"""Make an OME-Zarr pyramid of a Zarr array with a peer tool (run in its own process).

Usage: ``python _peers.py TOOL SRC DST LEVELS``, TOOL one of ``ngff-zarr`` or
``ome-zarr-py``. Both get the same dask array (the input's 64^3 chunks), mean
reduction by 2 per level, 64^3 output chunks and 2 worker threads.
"""

from __future__ import annotations

import json
import sys

import dask
import dask.array as da
from _jobs import WORKERS


def ngff_zarr(src: str, dst: str, levels: int) -> None:
    import ngff_zarr as nz

    image = nz.to_ngff_image(da.from_zarr(src), dims=["z", "y", "x"])
    factors = [2**k for k in range(1, levels)]
    multiscales = nz.to_multiscales(
        image, scale_factors=factors, method=nz.Methods.DASK_BIN_SHRINK, chunks=64
    )
    nz.to_ngff_zarr(dst, multiscales, version="0.5")


def ome_zarr_py(src: str, dst: str, levels: int) -> None:
    import zarr
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    group = zarr.open_group(dst, mode="w", zarr_format=3)
    write_image(
        da.from_zarr(src),
        group,
        scale_factors=[{"z": 2**k, "y": 2**k, "x": 2**k} for k in range(1, levels)],
        method=Methods.LOCAL_MEAN,
        axes="zyx",
        storage_options={"chunks": (64, 64, 64)},
    )


def main(argv: list[str]) -> None:
    tool, src, dst, levels = argv
    with dask.config.set(scheduler="threads", num_workers=WORKERS):
        {"ngff-zarr": ngff_zarr, "ome-zarr-py": ome_zarr_py}[tool](
            src, dst, int(levels)
        )
    print(json.dumps({"tool": tool}))


if __name__ == "__main__":
    main(sys.argv[1:])
