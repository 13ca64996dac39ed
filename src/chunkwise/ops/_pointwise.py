"""Pointwise operations: each output voxel depends only on the same input voxel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chunkwise.errors import BlockError, ChunkwiseError
from chunkwise.ops._base import LabelEffect, Operation
from chunkwise.ops._params import DTYPES, check_dtype, check_number, check_range
from chunkwise.ops._registry import param, register

if TYPE_CHECKING:
    from chunkwise._geometry import Box

__all__ = [
    "astype",
    "clip",
    "copy",
    "gamma",
    "invert",
    "rescale",
    "threshold",
    "to_dtype",
]


class _Pointwise(Operation):
    family = "pointwise"
    exactness = (
        "Bit-identical to numpy on the whole array: each voxel depends on itself alone."
    )

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        return self.map(data)

    def map(self, data: np.ndarray) -> np.ndarray:
        """Compute the output values from the input values."""
        raise NotImplementedError


def dtype_range(dtype: np.dtype) -> tuple[float, float]:
    """Return the natural value range of a dtype: its limits, or (0, 1) for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return (0.0, 1.0)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return (float(info.min), float(info.max))
    return (0.0, 1.0)


def to_dtype(
    values: np.ndarray,
    dtype: np.dtype,
    *,
    scratch: bool = False,
    what: str = "converting",
) -> np.ndarray:
    """Convert values to ``dtype``, rounding half to even and clipping into its range.

    Infinities clip to the integer range like any value beyond it, but NaN has no
    integer value: it raises `BlockError` naming ``what`` (the operation) rather
    than silently becoming 0. Any non-zero value is True for booleans. With
    ``scratch``, ``values`` is a temporary the conversion may overwrite, which
    spares a block-sized allocation or two.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return values != 0
    if dtype.kind == "f" or values.dtype == dtype:
        return values.astype(dtype)
    info = np.iinfo(dtype)
    if values.dtype.kind == "b":
        return values.astype(dtype)
    if values.dtype.kind in "ui":
        source = np.iinfo(values.dtype)
        low = values.dtype.type(max(info.min, source.min))
        high = values.dtype.type(min(info.max, source.max))
        return np.clip(values, low, high).astype(dtype)
    rounded = np.rint(values, out=values if scratch else None)
    # min() propagates NaN: one pass, no block-sized mask.
    if rounded.size and np.isnan(rounded.min()):
        raise BlockError(
            f"{what} to {dtype}: the values hold NaN, which has no integer value; "
            "replace it first (for example with custom:function=numpy:nan_to_num)"
        )
    return np.clip(rounded, info.min, info.max, out=rounded).astype(dtype)


@register
@dataclass(frozen=True)
class copy(_Pointwise):
    """The input unchanged: what ``chunkwise run`` does with no operation.

    Converting is a run like any other: into another chunk layout or codec, or an
    OME-Zarr pyramid, exactly, resumably and in parallel.

    Examples
    --------
    >>> import numpy as np
    >>> copy()(np.array([[0, 200]], np.uint8))
    array([[  0, 200]], dtype=uint8)
    """

    name = "copy"
    labels = LabelEffect.KEEPS

    def map(self, data: np.ndarray) -> np.ndarray:
        return data


@register
@dataclass(frozen=True)
class clip(_Pointwise):
    """Clip values into ``[lo, hi]``, keeping the dtype.

    Parameters
    ----------
    lo, hi : float
        Bounds, ``lo <= hi``. For integer data they are rounded inwards (``ceil(lo)``,
        ``floor(hi)``) and limited to the dtype's range.

    Examples
    --------
    >>> import numpy as np
    >>> clip(10, 200)(np.array([[5, 100, 250]], np.uint8))
    array([[ 10, 100, 200]], dtype=uint8)
    """

    name = "clip"
    labels = LabelEffect.DROPS
    lo: float
    hi: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", check_number("lo", self.lo))
        object.__setattr__(self, "hi", check_number("hi", self.hi))
        if self.lo > self.hi:
            raise ChunkwiseError(
                f"lo must be <= hi, got lo={self.lo!r} > hi={self.hi!r}"
            )

    def map(self, data: np.ndarray) -> np.ndarray:
        if data.dtype.kind in "uib":
            low, high = dtype_range(data.dtype)
            lo = min(max(math.ceil(self.lo), low), high)
            hi = max(min(math.floor(self.hi), high), low)
            return np.clip(data, data.dtype.type(lo), data.dtype.type(max(lo, hi)))
        return np.clip(data, data.dtype.type(self.lo), data.dtype.type(self.hi))


@register
@dataclass(frozen=True)
class threshold(_Pointwise):
    """Mask of voxels brighter than ``value``: 1 where ``x > value``, else 0 (uint8).

    Parameters
    ----------
    value : float
        The threshold.

    Examples
    --------
    >>> import numpy as np
    >>> threshold(100)(np.array([[50, 150]], np.uint8))
    array([[0, 1]], dtype=uint8)
    """

    name = "threshold"
    labels = LabelEffect.MAKES
    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_number("value", self.value))

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(np.uint8)

    def map(self, data: np.ndarray) -> np.ndarray:
        return (data > self.value).view(np.uint8)


@register
@dataclass(frozen=True)
class rescale(_Pointwise):
    """Map ``in_range`` linearly onto ``out_range``, clipping values outside it.

    Parameters
    ----------
    in_range : (float, float)
        Input values mapped to the ends of ``out_range``; values outside are clipped.
    out_range : (float, float), optional
        Output range; default: the limits of ``dtype`` (``(0, 1)`` for floats).
    dtype : str, optional
        Output dtype; default: the input's. Integer outputs are rounded half to even.

    Examples
    --------
    >>> import numpy as np
    >>> rescale((0, 1000), dtype="uint8")(np.array([[0, 500, 2000]], np.uint16))
    array([[  0, 128, 255]], dtype=uint8)
    """

    name = "rescale"
    labels = LabelEffect.DROPS
    in_range: tuple[float, float]
    out_range: tuple[float, float] | None = None
    dtype: str | None = param(None, kind="dtype", choices=DTYPES, advanced=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_range", check_range("in_range", self.in_range))
        if self.out_range is not None:
            object.__setattr__(
                self, "out_range", check_range("out_range", self.out_range)
            )
        if self.dtype is not None:
            object.__setattr__(self, "dtype", check_dtype("dtype", self.dtype))

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(self.dtype or dtype)

    def map(self, data: np.ndarray) -> np.ndarray:
        dtype = self.output_dtype(data.dtype)
        in_lo, in_hi = self.in_range
        out_lo, out_hi = self.out_range or dtype_range(dtype)
        values = np.clip(data.astype(np.float64), in_lo, in_hi)
        values -= in_lo
        values *= (out_hi - out_lo) / (in_hi - in_lo)
        values += out_lo
        return to_dtype(values, dtype, scratch=True, what="rescale")


@register
@dataclass(frozen=True)
class invert(_Pointwise):
    """Invert intensities as scikit-image does.

    Unsigned integers become ``max - x``, signed integers ``-1 - x`` (``~x``),
    booleans ``not x`` and floats ``-x``.

    References
    ----------
    .. [1] ``skimage.util.invert``.

    Examples
    --------
    >>> import numpy as np
    >>> invert()(np.array([[0, 200]], np.uint8))
    array([[255,  55]], dtype=uint8)
    """

    name = "invert"
    labels = LabelEffect.DROPS

    def map(self, data: np.ndarray) -> np.ndarray:
        if data.dtype.kind == "f":
            return np.negative(data)
        return np.invert(data)


@register
@dataclass(frozen=True)
class astype(_Pointwise):
    """Convert to ``dtype``, rounding half to even and clipping into its range.

    Parameters
    ----------
    dtype : str
        Target dtype, such as ``"uint8"`` or ``"float32"``. Converting NaN to an
        integer dtype is an error (`chunkwise.BlockError`).

    Examples
    --------
    >>> import numpy as np
    >>> astype("uint8")(np.array([[-3.0, 2.5, 3.5, 300.0]]))
    array([[  0,   2,   4, 255]], dtype=uint8)
    """

    name = "astype"
    dtype: str = param(kind="dtype", choices=DTYPES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", check_dtype("dtype", self.dtype))

    @property
    def labels(self) -> LabelEffect:  # type: ignore[override]
        """Keeps labels into an integer dtype (IDs keep their values), not a float."""
        integer = np.dtype(self.dtype).kind in "iu"
        return LabelEffect.KEEPS if integer else LabelEffect.DROPS

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(self.dtype)

    def map(self, data: np.ndarray) -> np.ndarray:
        return to_dtype(data, np.dtype(self.dtype), what="astype")


@register
@dataclass(frozen=True)
class gamma(_Pointwise):
    """Gamma correction ``gain * x**gamma`` on values normalised to ``[0, 1]``.

    Integer data is divided by its dtype's maximum, corrected, scaled back and
    rounded; float data is corrected as it is. Negative values count as 0.

    Parameters
    ----------
    gamma : float
        Exponent, > 0. Values < 1 brighten, > 1 darken.
    gain : float, optional
        Factor applied after the exponent (default 1).

    References
    ----------
    .. [1] ``skimage.exposure.adjust_gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> gamma(2.0)(np.array([[0, 128, 255]], np.uint8))
    array([[  0,  64, 255]], dtype=uint8)
    """

    name = "gamma"
    labels = LabelEffect.DROPS
    gamma: float = param(low=0.0, step=0.05)
    gain: float = param(1.0, low=0.0, step=0.1)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "gamma", check_number("gamma", self.gamma, low=0, strict_low=True)
        )
        object.__setattr__(self, "gain", check_number("gain", self.gain, low=0))

    def map(self, data: np.ndarray) -> np.ndarray:
        scale = dtype_range(data.dtype)[1] if data.dtype.kind in "ui" else 1.0
        values = np.maximum(data.astype(np.float64), 0.0) / scale
        values = np.power(values, self.gamma) * (self.gain * scale)
        return to_dtype(values, data.dtype, scratch=True)
