"""Resampling by integer factors: block reductions down, repetition or linear up."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chunkwise._geometry import Box, ceil_div
from chunkwise.ops._base import Operation
from chunkwise.ops._params import check_choice, check_number, check_per_axis, per_axis
from chunkwise.ops._pointwise import to_dtype

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["downsample", "upsample"]

DOWNSAMPLE_METHODS = ("mean", "min", "max", "median", "mode", "nearest")


class _Resample(Operation):
    factor: int | tuple[int, ...]

    def factors(self, ndim: int) -> tuple[int, ...]:
        """The factor along each of ``ndim`` axes (1 on non-spatial axes)."""
        return per_axis("factor", self.factor, ndim, 1)

    def check(self, ndim: int) -> None:
        self.factors(ndim)


def _window_mode(windows: np.ndarray) -> np.ndarray:
    """Most frequent value along the last axis; ties go to the smallest value."""
    ordered = np.sort(windows, axis=-1)
    positions = np.arange(ordered.shape[-1])
    starts = np.ones(ordered.shape, dtype=bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    run_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=-1)
    run_length = positions - run_start
    # argmax finds the first longest run; sorted order puts the smallest value first.
    best = np.argmax(run_length == run_length.max(axis=-1, keepdims=True), axis=-1)
    return np.take_along_axis(ordered, best[..., None], axis=-1)[..., 0]


def _sum_type(dtype: np.dtype, count: int) -> np.dtype:
    """The smallest integer type that holds the sum of ``count`` values of ``dtype``."""
    info = np.iinfo(dtype)
    low, high = info.min * count, info.max * count
    for candidate in (np.uint16, np.int16, np.uint32, np.int32, np.int64):
        limits = np.iinfo(candidate)
        if limits.min <= low and high <= limits.max:
            return np.dtype(candidate)
    return np.dtype(np.float64)  # beyond int64: summed in float64, as before


def _window_sums(data: np.ndarray, window: Sequence[int]) -> np.ndarray:
    """Sums of ``data`` over windows tiling it exactly, in a type that holds them."""
    total: np.ndarray = data
    kind = _sum_type(data.dtype, math.prod(window))
    for axis, w in enumerate(window):
        if w == 1:
            continue
        parts = [total[(slice(None),) * axis + (slice(i, None, w),)] for i in range(w)]
        summed = parts[0].astype(kind)
        for part in parts[1:]:
            np.add(summed, part, out=summed, casting="unsafe")
        total = summed
    return total if total is not data else data.astype(kind)


def _reduce_windows(data: np.ndarray, window: Sequence[int], method: str) -> np.ndarray:
    """Reduce ``data``, tiled by windows of shape ``window``, one value each."""
    counts = [n // w for n, w in zip(data.shape, window, strict=True)]
    split = [v for pair in zip(counts, window, strict=True) for v in pair]
    tiled = data.reshape(split)
    ndim = data.ndim
    if method == "mean" and data.dtype.kind in "iu":
        # Integer sums are exact in any order: add the windows' slices axis by axis
        # in an integer type just wide enough (uint16 for 2x2x2 of uint8), each
        # step on a smaller array. A multi-axis float64 sum of the tiled view was
        # 5-10x slower (benchmarks/results/pyramid.md).
        if _sum_type(data.dtype, math.prod(window)).kind == "f":
            values = tiled.sum(axis=tuple(range(1, 2 * ndim, 2)), dtype=np.float64)
        else:
            values = _window_sums(data, window).astype(np.float64)
        values /= math.prod(window)
        return to_dtype(values, data.dtype, scratch=True)
    # A contiguous copy with each window flattened on the last axis: every output
    # voxel is reduced over the same values in the same order wherever its block is.
    order = [*range(0, 2 * ndim, 2), *range(1, 2 * ndim, 2)]
    windows = np.ascontiguousarray(tiled.transpose(order)).reshape([*counts, -1])
    if method == "mean":
        values = windows.sum(axis=-1, dtype=np.float64)
        values /= windows.shape[-1]
        return to_dtype(values, data.dtype, scratch=True)
    if method == "median":
        return to_dtype(np.median(windows, axis=-1), data.dtype, scratch=True)
    if method == "min":
        return windows.min(axis=-1)
    if method == "max":
        return windows.max(axis=-1)
    return _window_mode(windows)


@dataclass(frozen=True)
class downsample(_Resample):
    """Reduce each block of ``factor`` voxels to one voxel.

    The output has ``ceil(n / factor)`` voxels per axis. A partial window at the far
    edge is reduced over its in-bounds voxels only, never over padding.

    Parameters
    ----------
    factor : int or tuple of int
        Downsampling factor, >= 1, for all spatial axes or one per spatial axis.
    method : {"mean", "min", "max", "median", "mode", "nearest"}
        ``mean`` and ``median`` keep the input dtype, rounding half to even for
        integers; ``mode`` (for labels) picks the most frequent value, ties going to
        the smallest; ``nearest`` takes the first voxel of each window (a stride).

    Examples
    --------
    >>> import numpy as np
    >>> downsample(2)(np.array([[1, 2, 9], [3, 4, 9]], np.uint8))
    array([[2, 9]], dtype=uint8)
    """

    name = "downsample"
    factor: int | tuple[int, ...] = 2
    method: str = "mean"

    def __post_init__(self) -> None:
        factor = check_per_axis("factor", self.factor, low=1, integer=True)
        object.__setattr__(self, "factor", factor)
        method = check_choice("method", self.method, DOWNSAMPLE_METHODS)
        object.__setattr__(self, "method", method)

    @property
    def label_safe(self) -> bool:  # type: ignore[override]
        # Each picks one of the window's values; mean and median blend them.
        return self.method in ("mode", "nearest", "min", "max")

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        factors = self.factors(len(shape))
        return tuple(ceil_div(n, k) for n, k in zip(shape, factors, strict=True))

    def voxel_scale(self, ndim: int) -> tuple[float, ...]:
        return tuple(float(k) for k in self.factors(ndim))

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        factors = self.factors(len(shape))
        return Box(
            tuple(a * k for a, k in zip(box.start, factors, strict=True)),
            tuple(
                min(b * k, n) for b, k, n in zip(box.stop, factors, shape, strict=True)
            ),
        ).clip(shape)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        factors = self.factors(data.ndim)
        if self.method == "nearest":
            return data[tuple(slice(None, None, k) for k in factors)]
        # Each axis is a run of whole windows plus, at the volume's far edge only,
        # one partial window; reduce each of the (at most 2**ndim) pieces apart.
        out = np.empty(box.shape, dtype=data.dtype)
        per_axis_pieces = []
        for n, k in zip(data.shape, factors, strict=True):
            whole = (n // k) * k
            pieces = [(0, whole, k)] if whole else []
            if n > whole:
                pieces.append((whole, n, n - whole))
            per_axis_pieces.append(pieces)
        for combo in itertools.product(*per_axis_pieces):
            source = tuple(slice(a, b) for a, b, _ in combo)
            target = tuple(
                slice(a // k, ceil_div(b, k))
                for (a, b, _), k in zip(combo, factors, strict=True)
            )
            out[target] = _reduce_windows(
                data[source], [w for *_, w in combo], self.method
            )
        return out


@dataclass(frozen=True)
class upsample(_Resample):
    """Enlarge by an integer ``factor`` per axis.

    Parameters
    ----------
    factor : int or tuple of int
        Upsampling factor, >= 1, for all spatial axes or one per spatial axis.
    order : {0, 1}
        0 repeats each voxel ``factor`` times per axis (``np.repeat``); 1 is linear
        interpolation with pixel-centre alignment, as
        ``scipy.ndimage.zoom(x, factor, order=1, grid_mode=True, mode="nearest")``.
        Integer outputs are rounded half to even.

    Examples
    --------
    >>> import numpy as np
    >>> upsample(2)(np.array([[1, 2]], np.uint8))
    array([[1, 1, 2, 2],
           [1, 1, 2, 2]], dtype=uint8)
    """

    name = "upsample"
    factor: int | tuple[int, ...] = 2
    order: int = 0

    def __post_init__(self) -> None:
        factor = check_per_axis("factor", self.factor, low=1, integer=True)
        object.__setattr__(self, "factor", factor)
        order = check_number("order", self.order, low=0, high=1, integer=True)
        object.__setattr__(self, "order", order)

    @property
    def label_safe(self) -> bool:  # type: ignore[override]
        return self.order == 0  # repetition; linear interpolation blends

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        factors = self.factors(len(shape))
        return tuple(n * k for n, k in zip(shape, factors, strict=True))

    def voxel_scale(self, ndim: int) -> tuple[float, ...]:
        return tuple(1.0 / k for k in self.factors(ndim))

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        factors = self.factors(len(shape))
        if self.order == 0:
            start = tuple(a // k for a, k in zip(box.start, factors, strict=True))
            stop = tuple(ceil_div(b, k) for b, k in zip(box.stop, factors, strict=True))
            return Box(start, stop)
        # Output voxel o samples the input at (o + 0.5) / k - 0.5, between two voxels.
        start = tuple(
            int(np.floor((a + 0.5) / k - 0.5))
            for a, k in zip(box.start, factors, strict=True)
        )
        stop = tuple(
            int(np.floor((b - 0.5) / k - 0.5)) + 2
            for b, k in zip(box.stop, factors, strict=True)
        )
        return Box(start, stop).clip(shape)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        factors = self.factors(data.ndim)
        if self.order == 0:
            for axis, k in enumerate(factors):
                if k > 1:
                    data = np.repeat(data, k, axis=axis)
            offset = tuple(d * k for d, k in zip(data_box.start, factors, strict=True))
            return data[box.relative_to(Box(offset, offset))]
        values = data.astype(np.float64)
        for axis, k in enumerate(factors):
            if k > 1:
                values = _interpolate_axis(values, axis, k, data_box.start[axis], box)
        return to_dtype(values, data.dtype, scratch=True)


def _interpolate_axis(
    values: np.ndarray, axis: int, k: int, data_start: int, box: Box
) -> np.ndarray:
    """Interpolate ``values`` along ``axis`` at the output voxels of ``box``."""
    out = np.arange(box.start[axis], box.stop[axis])
    coords = np.clip((out + 0.5) / k - 0.5, data_start, None) - data_start
    coords = np.minimum(coords, values.shape[axis] - 1)
    low = np.floor(coords).astype(np.intp)
    high = np.minimum(low + 1, values.shape[axis] - 1)
    weight_shape = [1] * values.ndim
    weight_shape[axis] = -1
    weight = (coords - low).reshape(weight_shape)
    return (
        values.take(low, axis=axis) * (1 - weight)
        + values.take(high, axis=axis) * weight
    )
