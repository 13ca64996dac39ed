"""Validation of operation parameters, done once where a parameter enters.

Each helper returns the parameter in its canonical, hashable form (tuples, not lists;
dtype names, not dtype objects) or raises `ChunkwiseError` naming the parameter.
"""

from __future__ import annotations

import json
import numbers
import os
from typing import TYPE_CHECKING

import numpy as np

from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DTYPES",
    "check_array",
    "check_choice",
    "check_choices",
    "check_dtype",
    "check_number",
    "check_per_axis",
    "check_range",
    "nested_tuples",
    "per_axis",
]

NUMERIC_KINDS = "buif"
#: The dtypes a form offers for an output.
DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
    integer: bool = False,
) -> float | int:
    """Return ``value`` as a number within ``[low, high]``, else raise."""
    if not _is_number(value) or not np.isfinite(value):
        raise ChunkwiseError(f"{name} must be a finite number, got {value!r}")
    if integer:
        if int(value) != value:
            raise ChunkwiseError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if low is not None and (value < low or (strict_low and value == low)):
        relation = ">" if strict_low else ">="
        raise ChunkwiseError(f"{name} must be {relation} {low}, got {value!r}")
    if high is not None and value > high:
        raise ChunkwiseError(f"{name} must be <= {high}, got {value!r}")
    return value


def check_per_axis(
    name: str, value: object, **bounds: object
) -> float | int | tuple[float | int, ...]:
    """Return a scalar or per-axis tuple of numbers, each checked by `check_number`."""
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        return check_number(name, value, **bounds)  # type: ignore[arg-type]
    if len(value) == 0:
        raise ChunkwiseError(f"{name} must not be empty")
    return tuple(check_number(name, v, **bounds) for v in value)  # type: ignore[arg-type]


def check_range(name: str, value: object) -> tuple[float, float]:
    """Return a ``(low, high)`` pair with ``low < high``."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ChunkwiseError(f"{name} must be a pair (low, high), got {value!r}")
    low, high = (check_number(name, v) for v in value)
    if not low < high:
        raise ChunkwiseError(f"{name} must have low < high, got {tuple(value)!r}")
    return (low, high)


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ChunkwiseError(
            f"{name} must be one of {', '.join(choices)}; got {value!r}"
        )
    return str(value)


def check_choices(
    name: str, value: object, choices: Iterable[str]
) -> str | tuple[str, ...]:
    """Return one of ``choices``, or a tuple of them (one per spatial axis)."""
    if isinstance(value, str) or not isinstance(value, tuple | list):
        return check_choice(name, value, choices)
    if len(value) == 0:
        raise ChunkwiseError(f"{name} must not be empty")
    return tuple(check_choice(name, v, choices) for v in value)


def check_array(name: str, value: object) -> np.ndarray:
    """Return an array given as nested lists, their JSON text, an array or a .npy path.

    Operations store the result as nested tuples (`nested_tuples`), so that their
    records never depend on a file.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)  # nested lists typed as text (a form field)
        except json.JSONDecodeError as error:
            raise ChunkwiseError(
                f"{name}: cannot read {value!r} as nested lists: {error}"
            ) from None
    if isinstance(value, str):
        if not value.endswith(".npy"):
            raise ChunkwiseError(
                f"{name} must be nested lists or a .npy file path, got {value!r}"
            )
        try:
            value = np.load(value, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ChunkwiseError(f"{name}: cannot read {value}: {error}") from error
    try:
        array = np.array(value)
    except ValueError as error:  # ragged nesting
        raise ChunkwiseError(f"{name} must be a rectangular array: {error}") from error
    if array.dtype.kind == "c":
        raise ChunkwiseError(f"{name} must be real numbers; complex is not supported")
    if array.dtype.kind not in NUMERIC_KINDS or array.size == 0:
        raise ChunkwiseError(
            f"{name} must be a non-empty array of numbers, got {value!r}"
        )
    return array


def nested_tuples(array: np.ndarray) -> tuple:
    """An array as nested tuples of Python scalars: hashable and JSON-ready."""
    if array.ndim == 0:
        raise ChunkwiseError(f"expected an array of 1 or more dimensions, got {array}")
    if array.ndim == 1:
        return tuple(array.tolist())
    return tuple(nested_tuples(part) for part in array)


def check_dtype(name: str, value: object) -> str:
    """Return the canonical name of a numeric dtype."""
    if value is None:  # numpy reads None as float64
        raise ChunkwiseError(f"{name} must be a dtype such as 'uint8', got None")
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, SyntaxError) as error:
        raise ChunkwiseError(f"{name} is not a dtype: {value!r}") from error
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize > 8:
        raise ChunkwiseError(
            f"{name} must be a boolean, integer or float dtype, got {dtype}"
        )
    if dtype == np.float16:
        # An output is also an input to the next run, and inputs refuse float16.
        raise ChunkwiseError(
            f"{name} float16 is not supported (chunkwise cannot read it back); "
            "use float32"
        )
    return dtype.name


def per_axis(name: str, value: object, ndim: int, neutral: float) -> tuple:
    """Expand a scalar or per-spatial-axis parameter to one value per array axis.

    Non-spatial axes (time, channel: all but the last 3) get ``neutral``, so an
    operation never mixes data across them.
    """
    spatial = spatial_axes(ndim)
    if isinstance(value, tuple):
        if len(value) != len(spatial):
            raise ChunkwiseError(
                f"{name} has {len(value)} values but the data has {len(spatial)} "
                f"spatial axes (shape has {ndim} dimensions)"
            )
        values = iter(value)
        return tuple(
            next(values) if axis in spatial else neutral for axis in range(ndim)
        )
    return tuple(value if axis in spatial else neutral for axis in range(ndim))
