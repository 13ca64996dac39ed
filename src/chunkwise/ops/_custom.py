"""User functions applied block by block, with a halo the user declares."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect, Operation
from chunkwise.ops._filters import MODES, WRAP_MODES
from chunkwise.ops._params import (
    DTYPES,
    check_choices,
    check_dtype,
    check_per_axis,
    per_axis,
)
from chunkwise.ops._pointwise import to_dtype
from chunkwise.ops._registry import param, register

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from chunkwise._geometry import Box

__all__ = ["custom", "resolve_function"]


def resolve_function(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    """Import ``"package.module:function"`` and return the function."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ChunkwiseError(f"function must be written module:function, got {spec!r}")
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise ChunkwiseError(
            f"function {spec!r} cannot be imported: {error}"
        ) from error
    except (Exception, SystemExit) as error:
        # The module itself is broken (a SyntaxError, or it raised on import).
        raise ChunkwiseError(
            f"function {spec!r} cannot be imported: module {module_name} fails on "
            f"import with {type(error).__name__}: {_first_line(error)}"
        ) from error
    try:
        for part in attribute.split("."):
            target = getattr(target, part)
    except AttributeError as error:
        raise ChunkwiseError(
            f"function {spec!r} cannot be imported: {error}"
        ) from error
    if not callable(target):
        raise ChunkwiseError(f"function {spec!r} is not callable")
    return target


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _function_spec(function: object) -> str:
    if isinstance(function, str):
        resolve_function(function)
        return function
    spec = (
        f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"
    )
    try:
        found = resolve_function(spec)
    except ChunkwiseError:
        found = None
    if found is not function:
        raise ChunkwiseError(
            f"function must be importable as module:function so that runs can be "
            f"resumed and run in other processes; {function!r} is not"
        )
    return spec


@register
@dataclass(frozen=True)
class custom(Operation):
    """Apply your own function to each block, read with a halo you declare.

    The function takes a numpy block and returns a block of the same shape. It is
    exact (equal to the function on the whole array) when each output voxel depends
    only on input voxels at most ``halo`` away. At the volume's faces it sees the
    block cut at the face, as it would see the whole array, and handles the border
    as it does there; except along the axes where ``mode`` says the function wraps
    around (``wrap``, ``grid-wrap``): there the halo is filled from the opposite
    face, as the function would wrap the whole array.

    Parameters
    ----------
    function : str or callable
        ``"package.module:function"``, or a function importable by that name.
    halo : int or tuple of int
        Reach of the function in voxels, for all spatial axes or one per axis.
    dtype : str, optional
        Output dtype (default: the input's). Results are converted to it, rounding
        half to even and clipping for integers.
    mode : str or tuple of str
        The boundary mode of the function, as in scipy.ndimage, for all spatial
        axes or one per axis. Only ``wrap`` and ``grid-wrap`` change what the
        function is given (the halo across a face comes from the opposite face);
        for every other mode the block is cut at the face.

    Examples
    --------
    >>> import numpy as np
    >>> custom("numpy:sqrt", dtype="uint8")(np.array([[4, 10]], np.uint16))
    array([[2, 3]], dtype=uint8)
    """

    name = "custom"
    family = "custom"
    exactness = (
        "Equal to the function on the whole array when each output voxel depends "
        "only on input voxels at most halo away, and the function wraps around the "
        "volume only along the axes whose mode is a wrap mode."
    )
    #: What the function does to label IDs is unknown.
    labels = LabelEffect.DROPS
    recent = ("mode",)
    function: str = "numpy:copy"
    halo: int | tuple[int, ...] = param(0, low=0, step=1)
    dtype: str | None = param(None, kind="dtype", choices=DTYPES)
    mode: str | tuple[str, ...] = param("reflect", kw_only=True, choices=MODES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "function", _function_spec(self.function))
        object.__setattr__(self, "mode", check_choices("mode", self.mode, MODES))
        halo = check_per_axis("halo", self.halo, low=0, integer=True)
        object.__setattr__(self, "halo", halo)
        if self.dtype is not None:
            object.__setattr__(self, "dtype", check_dtype("dtype", self.dtype))

    def halos(self, ndim: int) -> tuple[int, ...]:
        """The halo along each of ``ndim`` axes."""
        return per_axis("halo", self.halo, ndim, 0)

    def check(self, ndim: int) -> None:
        self.halos(ndim)
        per_axis("mode", self.mode, ndim, "reflect")

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(self.dtype or dtype)

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        modes = per_axis("mode", self.mode, len(shape), "reflect")
        periodic = [axis for axis, m in enumerate(modes) if m in WRAP_MODES]
        return box.grow(self.halos(len(shape))).clip(shape, keep=periodic)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        result = np.asarray(resolve_function(self.function)(data))
        if result.shape != data.shape:
            raise ChunkwiseError(
                f"custom function {self.function} returned shape {result.shape} "
                f"for a block of shape {data.shape}; it must keep the shape"
            )
        return to_dtype(
            result[box.relative_to(data_box)],
            self.output_dtype(data.dtype),
            what=f"custom {self.function}",
        )
