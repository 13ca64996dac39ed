"""Operations on the space axes only, one channel and time point at a time.

Operations treat the last 3 axes (or 2, for 2D data) as space and leave the axes
before them alone: a sigma of 0, a window of 1, a factor of 1 there. Data whose space
axes are elsewhere (an RGB image ``yxc``, a 2D multichannel image ``cyx``, a 2D
time series ``tyx``) is processed through `on_axes`, which applies the operation to
each plane or volume of the space axes apart, so colours and channels never mix.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chunkwise._geometry import Box, spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect, Operation

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AXIS_TYPES", "OnAxes", "axes_spatial", "check_axes", "fit_axes", "on_axes"]

#: What each axis letter stands for, as NGFF axis types.
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def check_axes(axes: object, ndim: int) -> str:
    """Return ``axes`` (such as ``"czyx"`` or ``"yxc"``) checked against ``ndim``."""
    if not isinstance(axes, str):
        raise ChunkwiseError(
            f"axes must be text with one letter per axis from t, c, z, y, x "
            f"(such as 'czyx' or 'yxc' for RGB), got {axes!r}"
        )
    letters = axes.strip().lower()
    if len(letters) != ndim:
        raise ChunkwiseError(
            f"axes {axes!r} names {len(letters)} axes; the data has {ndim}"
        )
    unknown = sorted(set(letters) - set(AXIS_TYPES))
    if unknown:
        raise ChunkwiseError(
            f"axes {axes!r} has {', '.join(unknown)}; use t (time), c (channel) "
            "and z, y, x (space)"
        )
    if len(set(letters)) != len(letters):
        raise ChunkwiseError(f"axes {axes!r} names an axis twice")
    if not 2 <= len(axes_spatial(letters)) <= 3:
        raise ChunkwiseError(f"axes {axes!r} must have 2 or 3 space axes (z, y, x)")
    return letters


def axes_spatial(axes: str) -> tuple[int, ...]:
    """Indices of the space axes in ``axes``."""
    return tuple(i for i, letter in enumerate(axes) if AXIS_TYPES[letter] == "space")


def _split(values: Sequence[Any], spatial: Sequence[int]) -> tuple[Any, ...]:
    return tuple(values[axis] for axis in spatial)


def _merge(
    values: Sequence[Any], spatial: Sequence[int], inner: Sequence[Any]
) -> tuple[Any, ...]:
    merged = list(values)
    for axis, value in zip(spatial, inner, strict=True):
        merged[axis] = value
    return tuple(merged)


@dataclass(frozen=True)
class OnAxes(Operation):
    """``op`` applied to each plane or volume of the ``spatial`` axes apart.

    Along the other axes (channels, time points) the output box is the input box:
    no halo, no resampling, no mixing.
    """

    op: Operation
    spatial: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.op, OnAxes) or len(self.op.steps) != 1:
            raise ChunkwiseError("on_axes wraps one single operation")
        spatial = tuple(int(a) for a in self.spatial)
        if sorted(set(spatial)) != list(spatial) or not 2 <= len(spatial) <= 3:
            raise ChunkwiseError(
                f"spatial axes must be 2 or 3 increasing axis numbers, got {spatial}"
            )
        object.__setattr__(self, "spatial", spatial)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.op.name

    @property
    def labels(self) -> LabelEffect:  # type: ignore[override]
        return self.op.labels

    def check(self, ndim: int) -> None:
        if self.spatial[-1] >= ndim:
            raise ChunkwiseError(
                f"space axes {self.spatial} do not fit data of {ndim} dimensions"
            )
        self.op.check(len(self.spatial))

    def check_shape(self, shape: Sequence[int]) -> None:
        self.op.check_shape(_split(shape, self.spatial))

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        inner = self.op.output_shape(_split(shape, self.spatial))
        return _merge(shape, self.spatial, inner)

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return self.op.output_dtype(dtype)

    def voxel_scale(self, ndim: int) -> tuple[float, ...]:
        inner = self.op.voxel_scale(len(self.spatial))
        return _merge((1.0,) * ndim, self.spatial, inner)

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        need = self.op.input_box(self._sub(box), _split(shape, self.spatial))
        return Box(
            _merge(box.start, self.spatial, need.start),
            _merge(box.stop, self.spatial, need.stop),
        )

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        out = np.empty(box.shape, self.op.output_dtype(data.dtype))
        sub_data_box, sub_box = self._sub(data_box), self._sub(box)
        others = [a for a in range(data.ndim) if a not in self.spatial]
        # Along the other axes the input box is the output box (see `input_box`).
        for index in itertools.product(*(range(box.shape[a]) for a in others)):
            where = [slice(None)] * data.ndim
            for axis, i in zip(others, index, strict=True):
                where[axis] = i
            picked = tuple(where)
            out[picked] = self.op.apply(data[picked], sub_data_box, sub_box)
        return out

    def _sub(self, box: Box) -> Box:
        return Box(_split(box.start, self.spatial), _split(box.stop, self.spatial))

    def params(self) -> dict[str, Any]:
        return self.op.params()

    def to_dict(self) -> dict[str, Any]:
        return {**self.op.to_dict(), "spatial_axes": list(self.spatial)}


def on_axes(op: Operation, spatial: Sequence[int]) -> Operation:
    """Apply ``op`` on the ``spatial`` axes only, each channel and time point apart.

    Parameters
    ----------
    op : Operation
        A single operation or a chain (each step is wrapped).
    spatial : sequence of int
        The 2 or 3 space axes, in increasing order.

    Returns
    -------
    Operation
        An operation that leaves the other axes as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> rgb = np.zeros((4, 4, 3), np.uint8)
    >>> rgb[1, 1] = (255, 0, 0)
    >>> red = on_axes(ops.maximum(3), (0, 1))(rgb)
    >>> int(red[0, 0, 0]), int(red[0, 0, 1])
    (255, 0)
    """
    from chunkwise.ops._chain import chain

    spatial = tuple(spatial)
    wrapped = [
        step if isinstance(step, OnAxes) else OnAxes(step, spatial) for step in op.steps
    ]
    if any(step.spatial != spatial for step in wrapped):  # type: ignore[attr-defined]
        raise ChunkwiseError("the operation is already set to other space axes")
    return wrapped[0] if len(wrapped) == 1 else chain(*wrapped)


def fit_axes(op: Operation, spatial: Sequence[int], ndim: int) -> Operation:
    """``op`` for data of ``ndim`` axes whose space axes are ``spatial``.

    Unchanged where they are the usual ones (the last 3, or 2 for 2D data), which
    the operations handle themselves; wrapped by `on_axes` otherwise.
    """
    if tuple(spatial) == spatial_axes(ndim):
        return op
    return on_axes(op, spatial)
