"""The operation protocol and the evaluator that runs a list of steps over a box.

An operation maps an input volume to an output volume. It says which input box an
output box needs (`input_box`) and computes the output box from that input
(`apply`). The same code path computes a work block, a preview plane and the
whole-array result (`Operation.__call__`), so all three agree by construction.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from chunkwise._geometry import Box, wrapped_pieces
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["LabelEffect", "Operation", "evaluate", "label_effect"]


class LabelEffect(str, enum.Enum):
    """What an operation does to labels: whether its output is labels (or a mask).

    The value is the word a reference page shows: ``"keeps"``, ``"makes"`` or
    ``"drops"``.
    """

    #: Every output value is one of the input's values (a copy, a rank or count
    #: over a window, a repetition), never a blend of label IDs: labels stay labels,
    #: and an image stays an image.
    KEEPS = "keeps"
    #: The output is a mask, whatever the input (a threshold).
    MAKES = "makes"
    #: Values are blended (means, interpolation, arithmetic): the output is an
    #: image, whatever the input.
    DROPS = "drops"

    def then(self, after: LabelEffect) -> LabelEffect:
        """The effect of this step followed by the step ``after``."""
        return self if after is LabelEffect.KEEPS else after

    def of(self, labels: bool) -> bool:
        """Whether the output is labels, given whether the input is."""
        return self is LabelEffect.MAKES or (labels and self is LabelEffect.KEEPS)


def label_effect(steps: Sequence[Operation]) -> LabelEffect:
    """The effect of ``steps`` run one after another: the last that is not KEEPS."""
    return functools.reduce(
        LabelEffect.then, (step.labels for step in steps), LabelEffect.KEEPS
    )


class Operation:
    """Base class of every operation: a small frozen dataclass of parameters.

    Subclasses set `name`, `family`, `labels` and `exactness` and implement `apply`;
    resampling and neighbourhood operations also override `output_shape` and
    `input_box`. An operation of the catalogue is registered where it is defined
    (`chunkwise.ops.register`).
    """

    name: ClassVar[str]
    #: Its family in the catalogue (a key of `chunkwise.ops.FAMILIES`).
    family: ClassVar[str]
    #: What it does to labels. Every operation sets it: a class attribute, or a
    #: property where a parameter decides (``downsample``'s method, say).
    labels: ClassVar[LabelEffect]
    #: How its chunked result compares with its reference on the whole array, in a
    #: sentence or two (reference pages show it).
    exactness: ClassVar[str]
    #: Parameters added after records of the operation were first written: left
    #: out of the record at their default, so that an older record still describes
    #: the same operation and its run still resumes (resume compares records).
    recent: ClassVar[tuple[str, ...]] = ()

    @property
    def steps(self) -> tuple[Operation, ...]:
        """The single operations this one runs, in order."""
        return (self,)

    def labels_from(self, labels: bool) -> bool:
        """Whether the output is labels (or a mask), given whether the input is."""
        return self.labels.of(labels)

    def check(self, ndim: int) -> None:
        """Raise `ChunkwiseError` if the operation cannot apply to ``ndim`` axes."""

    def check_shape(self, shape: Sequence[int]) -> None:
        """Raise `ChunkwiseError` if the operation is absurd on an input of ``shape``.

        Called before anything is computed or written (a kernel far larger than
        the volume, say, would run for hours).
        """

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of the output for an input of ``shape``."""
        return tuple(shape)

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        """Dtype of the output for an input of ``dtype``."""
        return np.dtype(dtype)

    def voxel_scale(self, ndim: int) -> tuple[float, ...]:
        """Size of an output voxel in input voxels, per axis (``k`` after downsample).

        Output voxel ``j`` is centred on input coordinate ``(j + 0.5) * s - 0.5``.
        """
        return (1.0,) * ndim

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        """Input box that output ``box`` needs, for an input of ``shape``.

        The box is clipped to the volume unless the operation wraps around it.
        """
        return box

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        """Compute output ``box`` from ``data``, the input over ``data_box``."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The parameters, as plain JSON-ready values (`recent` ones if not default)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self.recent or getattr(self, f.name) != f.default
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, recorded in provenance and checked on resume."""
        return {"op": self.name, **self.params()}

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Apply the operation to a whole in-memory array."""
        array = np.asarray(array)
        if array.dtype.kind not in "buif" or array.dtype == np.float16:
            raise ChunkwiseError(
                f"the array has dtype {array.dtype}; chunkwise processes boolean, "
                "integer, float32 and float64 data"
            )
        if array.ndim == 0:
            raise ChunkwiseError("the array has 0 dimensions; give 1 or more")
        for step in self.steps:
            step.check(array.ndim)
        self.check_shape(array.shape)
        return evaluate(self, array.shape, array.dtype, lambda box: array[box.slices])


def _shapes_and_dtypes(
    steps: Sequence[Operation], shape: Sequence[int], dtype: np.dtype
) -> list[tuple[tuple[int, ...], np.dtype]]:
    layouts = [(tuple(shape), np.dtype(dtype))]
    for step in steps:
        shape, dtype = layouts[-1]
        layouts.append((step.output_shape(shape), step.output_dtype(dtype)))
    return layouts


def evaluate(
    op: Operation,
    shape: Sequence[int],
    dtype: np.dtype,
    read: Callable[[Box], np.ndarray],
    box: Box | None = None,
) -> np.ndarray:
    """Compute ``op``'s output over ``box`` (default: all of it).

    ``read(box)`` returns the input over a box inside ``shape``. Each step asks the
    step before it for exactly the box it needs; boxes that wrap around the volume
    are assembled from in-volume pieces.
    """
    layouts = _shapes_and_dtypes(op.steps, shape, dtype)
    if box is None:
        box = Box.full(layouts[-1][0])
    if box.size == 0:
        # An empty array: nothing to read, and no axis of length 0 to wrap around.
        return np.empty(box.shape, layouts[-1][1])
    return _evaluate(op.steps, layouts, read, box)


def _evaluate(steps, layouts, read, box: Box) -> np.ndarray:
    if not steps:
        return read(box)
    step = steps[-1]
    in_shape, in_dtype = layouts[-2]
    need = step.input_box(box, in_shape)
    pieces = list(wrapped_pieces(need, in_shape))
    if len(pieces) == 1:
        data = _evaluate(steps[:-1], layouts[:-1], read, pieces[0][0])
    else:
        data = np.empty(need.shape, in_dtype)
        for source, target in pieces:
            data[target.slices] = _evaluate(steps[:-1], layouts[:-1], read, source)
    return step.apply(data, need, box)
