"""Chains of operations, run as one pass per block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect, Operation, label_effect

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from chunkwise._geometry import Box

__all__ = ["Chain", "chain"]


@dataclass(frozen=True)
class Chain(Operation):
    """Operations applied one after another within each block.

    Regions compose backwards: the last step says what it needs from the step
    before, and so on down to the input, so halos and factors add up exactly.
    """

    name = "chain"
    ops: tuple[Operation, ...]

    @property
    def steps(self) -> tuple[Operation, ...]:
        return self.ops

    @property
    def labels(self) -> LabelEffect:  # type: ignore[override]
        return label_effect(self.ops)

    def check(self, ndim: int) -> None:
        for step in self.ops:
            step.check(ndim)

    def check_shape(self, shape: Sequence[int]) -> None:
        for step in self.ops:
            step.check_shape(shape)
            shape = step.output_shape(shape)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        for step in self.ops:
            shape = step.output_shape(shape)
        return tuple(shape)

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        for step in self.ops:
            dtype = step.output_dtype(dtype)
        return dtype

    def voxel_scale(self, ndim: int) -> tuple[float, ...]:
        scale = (1.0,) * ndim
        for step in self.ops:
            scale = tuple(
                a * b for a, b in zip(scale, step.voxel_scale(ndim), strict=True)
            )
        return scale

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        shapes = [tuple(shape)]
        for step in self.ops[:-1]:
            shapes.append(step.output_shape(shapes[-1]))
        for step, in_shape in zip(reversed(self.ops), reversed(shapes), strict=True):
            box = step.input_box(box, in_shape).clip(in_shape)
        return box

    def to_dict(self) -> dict[str, Any]:
        return {"op": "chain", "steps": [step.to_dict() for step in self.ops]}


def chain(*ops: Operation) -> Chain:
    """Chain operations so that each block runs them all in one pass.

    Parameters
    ----------
    *ops : Operation
        The operations, first applied first. Chains inside are flattened.

    Returns
    -------
    Chain
        An operation like any other.

    Raises
    ------
    ChunkwiseError
        If no operation is given, or an argument is not an operation.

    Examples
    --------
    >>> from chunkwise import ops
    >>> chain(ops.gaussian(1), ops.downsample(2)).to_dict()["steps"][1]["op"]
    'downsample'
    """
    if not ops:
        raise ChunkwiseError("chain needs at least one operation")
    flat: list[Operation] = []
    for op in ops:
        if not isinstance(op, Operation):
            raise ChunkwiseError(f"chain takes operations, got {op!r}")
        flat.extend(op.steps)
    return Chain(tuple(flat))
