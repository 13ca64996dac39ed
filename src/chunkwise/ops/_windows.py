"""Reducing windows that tile a block to one value each, under stated conventions.

The conventions are where the peers differ: how a blended value becomes an integer
or a boolean, which middle value an even-sized median takes, and in which type and
order a float window is summed. `downsample` exposes each as a parameter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from chunkwise.ops._pointwise import to_dtype

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ACCUMULATORS",
    "BOOL_RULES",
    "MEDIANS",
    "ROUNDINGS",
    "Rules",
    "reduce_windows",
]

ROUNDINGS = ("half_even", "toward_zero")
BOOL_RULES = ("nonzero", "half_even")
MEDIANS = ("average", "lower")
ACCUMULATORS = ("float64", "input")


class Rules(NamedTuple):
    """How blended window values are made (see `downsample` for each choice)."""

    rounding: str
    bool_rule: str
    median: str
    accumulate: str


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


def _in_order_sum(windows: np.ndarray) -> np.ndarray:
    """Sum along the last axis one value at a time, in the values' own type.

    This is tensorstore's float mean: an accumulator of the input's type, added to
    in the window's C order.
    """
    total = windows[..., 0].copy()
    for index in range(1, windows.shape[-1]):
        total += windows[..., index]
    return total


def _blend_to(values: np.ndarray, dtype: np.dtype, rules: Rules) -> np.ndarray:
    """Convert float64 blends (means, averaged medians) back to ``dtype``."""
    if dtype.kind == "b":
        if rules.bool_rule == "half_even":
            values = np.rint(values, out=values)
        return values != 0
    if dtype.kind in "iu" and rules.rounding == "toward_zero":
        values = np.trunc(values, out=values)
    return to_dtype(values, dtype, scratch=True)


def _integer_mean(
    data: np.ndarray, tiled: np.ndarray, window: Sequence[int], rules: Rules
) -> np.ndarray:
    # Integer sums are exact in any order: add the windows' slices axis by axis in an
    # integer type just wide enough (uint16 for 2x2x2 of uint8), each step on a
    # smaller array. A multi-axis float64 sum of the tiled view was 5-10x slower
    # (benchmarks/results/pyramid.md). The float64 quotient of an exact sum lands on
    # the same side of every integer and half-integer as the exact quotient.
    count = math.prod(window)
    if _sum_type(data.dtype, count).kind == "f":
        axes = tuple(range(1, 2 * data.ndim, 2))
        values = tiled.sum(axis=axes, dtype=np.float64)
    else:
        values = _window_sums(data, window).astype(np.float64)
    values /= count
    return _blend_to(values, data.dtype, rules)


def reduce_windows(
    data: np.ndarray, window: Sequence[int], method: str, rules: Rules
) -> np.ndarray:
    """Reduce ``data``, tiled by windows of shape ``window``, one value each."""
    counts = [n // w for n, w in zip(data.shape, window, strict=True)]
    split = [v for pair in zip(counts, window, strict=True) for v in pair]
    tiled = data.reshape(split)
    ndim = data.ndim
    if method == "mean" and data.dtype.kind in "iu":
        return _integer_mean(data, tiled, window, rules)
    # A contiguous copy with each window flattened on the last axis, in the window's
    # C order: every output voxel is reduced over the same values in the same order
    # wherever its block is.
    order = [*range(0, 2 * ndim, 2), *range(1, 2 * ndim, 2)]
    windows = np.ascontiguousarray(tiled.transpose(order)).reshape([*counts, -1])
    size = windows.shape[-1]
    if method == "mean":
        if data.dtype.kind == "f" and rules.accumulate == "input":
            total = _in_order_sum(windows)
            total /= data.dtype.type(size)
            return total
        values = windows.sum(axis=-1, dtype=np.float64)
        values /= size
        return _blend_to(values, data.dtype, rules)
    if method == "median":
        if rules.median == "lower":
            middle = (size - 1) // 2
            return np.partition(windows, middle, axis=-1)[..., middle]
        values = np.median(windows, axis=-1)
        return _blend_to(np.asarray(values, np.float64), data.dtype, rules)
    if method == "min":
        return windows.min(axis=-1)
    if method == "max":
        return windows.max(axis=-1)
    return _window_mode(windows)
