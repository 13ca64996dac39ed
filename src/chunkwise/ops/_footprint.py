"""Footprints: which voxels of a window a filter looks at.

A footprint is given as a boolean array (nested lists, or a ``.npy`` file), or by
name for any number of axes:

- ``ball:R``: the voxels within Euclidean distance ``R`` of the centre voxel
  (``R`` >= 0, may be fractional: ``ball:1.5`` is the 3 x 3 x 3 box without its
  corners); ``2 * floor(R) + 1`` voxels wide.
- ``cross:R`` (``cross`` is ``cross:1``): the voxels within city-block distance
  ``R`` of the centre, which is scipy's ``generate_binary_structure(ndim, 1)``
  iterated ``R`` times (``iterate_structure``); ``2 * R + 1`` voxels wide.
- ``box:N``: all voxels of an ``N``-wide box, the same as ``size=N``.

An operation keeps a named footprint as its name, so that it fits data of any
number of axes, and an array as nested tuples of bools, so that its record never
depends on a file.
"""

from __future__ import annotations

import functools

import numpy as np

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._params import check_array, check_number, nested_tuples

__all__ = [
    "MAX_FOOTPRINT",
    "NAMED",
    "PRESETS",
    "check_footprint",
    "footprint_array",
    "footprint_shape",
]

NAMED = ("ball", "cross", "box")
#: Named footprints a form offers (any ball:R, cross:R or box:N is taken).
PRESETS = ("ball:1", "ball:2", "cross", "cross:2", "box:3", "box:5")
#: Voxels a named footprint may span: a rank filter visits each of them at every
#: voxel, so beyond this (a 215^3 box) a run would take days.
MAX_FOOTPRINT = 10_000_000


def check_footprint(value: object) -> str | tuple | None:
    """Return a footprint in canonical form: its name, nested tuples of bools, or None.

    ``""`` means no footprint (an empty text field); text that starts with ``[`` is
    read as JSON nested lists, as a form's text field gives them.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    if text and not text.startswith("[") and not text.endswith(".npy"):
        return _check_name(text)
    array = check_array("footprint", value)
    if array.ndim == 0:
        raise ChunkwiseError(
            f"footprint must be an array of one level per spatial axis, got {value!r}"
        )
    if not np.isin(array, (0, 1)).all():
        raise ChunkwiseError(
            "footprint must hold only booleans or 0 and 1, got values "
            f"{np.unique(array[~np.isin(array, (0, 1))])[:5].tolist()}"
        )
    if not array.any():
        raise ChunkwiseError("footprint must select at least one voxel")
    return nested_tuples(array.astype(bool))


def _check_name(text: str) -> str:
    name, _, argument = text.partition(":")
    if name not in NAMED:
        raise ChunkwiseError(
            f"footprint {text!r} is not a shape: write ball:R, cross:R or box:N, "
            "nested lists such as [[0,1,0],[1,1,1],[0,1,0]], or a .npy file path"
        )
    if name == "cross" and not argument:
        argument = "1"
    try:
        number = float(argument)
    except ValueError:
        raise ChunkwiseError(
            f"footprint {text!r}: {name} needs a number, such as {name}:2"
        ) from None
    if name == "ball":
        return f"ball:{check_number('footprint ball radius', number, low=0):g}"
    if name == "cross":
        radius = check_number("footprint cross radius", number, low=0, integer=True)
        return f"cross:{radius}"
    return f"box:{check_number('footprint box width', number, low=1, integer=True)}"


def footprint_shape(footprint: str | tuple, ndim: int) -> tuple[int, ...]:
    """The footprint's extent per axis, for ``ndim`` axes (without building it)."""
    if isinstance(footprint, tuple):
        return np.shape(footprint)
    name, _, argument = footprint.partition(":")
    width = int(argument) if name == "box" else 2 * int(float(argument)) + 1
    return (width,) * ndim


@functools.lru_cache(maxsize=32)
def footprint_array(footprint: str | tuple, ndim: int) -> np.ndarray:
    """The footprint as a read-only boolean array of ``ndim`` axes."""
    if isinstance(footprint, tuple):
        array = np.array(footprint, dtype=bool)
    else:
        name, _, argument = footprint.partition(":")
        shape = footprint_shape(footprint, ndim)
        if name == "box":
            array = np.ones(shape, bool)
        else:
            offsets = np.indices(shape) - np.array(shape).reshape(-1, *[1] * ndim) // 2
            if name == "ball":
                array = (offsets**2).sum(axis=0) <= float(argument) ** 2
            else:
                array = np.abs(offsets).sum(axis=0) <= int(argument)
    array.flags.writeable = False
    return array
