"""A generated, deterministic, CT-like sample volume: smooth structures plus noise.

No downloads and no third-party data. Each plane is computed on its own from the
seed, so a volume of any size is written slab by slab in bounded memory and is the
same whichever way it is cut.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from chunkwise._output import Found, claim_output, inspect_output, new_run_id
from chunkwise._store import create_output, output_store
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["synthetic_ct", "write_synthetic_ct"]


def _structures(seed: int) -> np.ndarray:
    """Centres (z, y, x in [-1, 1]), radii and intensities of the inner 'organs'."""
    rng = np.random.default_rng(seed)
    count = 12
    centres = rng.uniform(-0.5, 0.5, size=(count, 3))
    radii = rng.uniform(0.08, 0.25, size=(count, 1))
    values = rng.uniform(110, 220, size=(count, 1))
    return np.hstack([centres, radii, values])


def _plane(
    z: int, shape: Sequence[int], seed: int, structures: np.ndarray
) -> np.ndarray:
    nz, ny, nx = shape
    zc = 2 * (z + 0.5) / nz - 1
    y = (2 * (np.arange(ny, dtype=np.float32) + 0.5) / ny - 1)[:, None]
    x = (2 * (np.arange(nx, dtype=np.float32) + 0.5) / nx - 1)[None, :]
    body = (zc / 0.92) ** 2 + (y / 0.85) ** 2 + (x / 0.8) ** 2
    # Soft tissue inside a body outline, a dense shell like bone, organs inside.
    values = np.where(body < 1, np.float32(70), np.float32(15))
    values += 150 * np.exp(-(((np.sqrt(body) - 0.93) / 0.03) ** 2))
    for cz, cy, cx, radius, value in structures:
        reach = 1.6 * radius
        if abs(zc - cz) > reach:
            continue
        # Only the window where the organ's soft edge is not negligible.
        rows = slice(*np.searchsorted(y[:, 0], [cy - reach, cy + reach]))
        cols = slice(*np.searchsorted(x[0], [cx - reach, cx + reach]))
        distance = np.sqrt(
            (zc - cz) ** 2 + (y[rows] - cy) ** 2 + (x[:, cols] - cx) ** 2
        )
        values[rows, cols] += (value - 70) / (1 + np.exp((distance / radius - 1) * 12))
    values += 10 * np.sin(3 * x + 2 * zc) * np.cos(2.5 * y)
    noise = np.random.default_rng([seed, z]).normal(0.0, 8.0, size=(ny, nx))
    return np.clip(np.rint(values + noise), 0, 255).astype(np.uint8)


def synthetic_ct(
    shape: Sequence[int] = (256, 256, 256), *, seed: int = 0
) -> np.ndarray:
    """Generate a CT-like uint8 volume in memory.

    Parameters
    ----------
    shape : sequence of 3 int
        Volume shape (z, y, x).
    seed : int
        The same seed always gives the same volume.

    Returns
    -------
    numpy.ndarray
        uint8 volume of ``shape``.

    Examples
    --------
    >>> synthetic_ct((8, 16, 16)).shape
    (8, 16, 16)
    """
    shape = tuple(int(n) for n in shape)
    structures = _structures(seed)
    return np.stack([_plane(z, shape, seed, structures) for z in range(shape[0])])


#: The largest sample: 64 GiB of uint8.
MAX_VOXELS = 2**36


def _check_shape(values: Any, name: str) -> tuple[int, ...]:
    try:
        sides = tuple(operator.index(v) for v in values)
    except TypeError:
        sides = ()
    if len(sides) != 3 or min(sides) < 1:
        raise ChunkwiseError(
            f"{name} must be 3 positive whole numbers (z, y, x), got {values!r}"
        )
    return sides


def write_synthetic_ct(
    out: Any,
    shape: Sequence[int] = (256, 256, 256),
    *,
    chunks: Sequence[int] = (64, 64, 64),
    seed: int = 0,
    zarr_format: int = 3,
    codec: str = "zstd",
    overwrite: bool = False,
) -> zarr.Array:
    """Write `synthetic_ct` to a Zarr array slab by slab, in bounded memory.

    Parameters
    ----------
    out : str, os.PathLike, zarr store or None
        Where to write (None: in memory). It must not exist, unless ``overwrite``
        and it is a Zarr array that chunkwise made, which is then replaced.
    shape, seed
        As for `synthetic_ct`.
    chunks : sequence of 3 int
        Chunk shape.
    zarr_format : {2, 3}
        Zarr format.
    codec : str
        Compression, as for `chunkwise.process`.
    overwrite : bool
        Replace a sample or an output that chunkwise wrote there before.

    Returns
    -------
    zarr.Array

    Raises
    ------
    ChunkwiseError
        If ``out`` holds anything else, or is in use by a run.
    """
    shape, chunks = _check_shape(shape, "shape"), _check_shape(chunks, "chunks")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ChunkwiseError(f"seed must be a whole number >= 0, got {seed!r}")
    if math.prod(shape) > MAX_VOXELS:
        raise ChunkwiseError(
            f"a {'x'.join(map(str, shape))} sample is {math.prod(shape):.3g} voxels; "
            f"samples are limited to 2**36 ({MAX_VOXELS:.3g}, 64 GiB)"
        )
    store = output_store(out)
    found = inspect_output(store)
    if found.found not in (Found.NOTHING, Found.EMPTY) and not (
        overwrite and found.found in (Found.CHUNKWISE, Found.BROKEN)
    ):
        hint = (
            "; pass overwrite (--overwrite) to replace it"
            if found.found in (Found.CHUNKWISE, Found.BROKEN)
            else ""
        )
        raise ChunkwiseError(
            f"{out} already holds {found.found.value}; refusing to replace it{hint}"
        )
    run_id = new_run_id()
    claim = claim_output(store, found, run_id=run_id, replace=overwrite)
    try:
        array = _write(store, shape, chunks, seed, zarr_format, codec, run_id)
    except BaseException:
        claim.abandon()
        raise
    claim.purge()
    claim.release()
    return array


def _write(
    store: Any,
    shape: tuple[int, ...],
    chunks: Sequence[int],
    seed: int,
    zarr_format: int,
    codec: str,
    run_id: str,
) -> zarr.Array:
    array = create_output(
        store,
        shape=shape,
        dtype=np.dtype(np.uint8),
        chunks=tuple(min(c, n) for c, n in zip(chunks, shape, strict=True)),
        shards=None,
        zarr_format=zarr_format,
        codec=codec,
        attributes={"sample": {"kind": "synthetic_ct", "seed": seed}, "run_id": run_id},
        overwrite=True,
    )
    structures = _structures(seed)
    step = array.chunks[0]
    for z0 in range(0, shape[0], step):
        z1 = min(z0 + step, shape[0])
        array[z0:z1] = np.stack(
            [_plane(z, shape, seed, structures) for z in range(z0, z1)]
        )
    return array
