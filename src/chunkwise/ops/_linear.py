"""Linear filters: correlation and convolution with any kernel, Sobel, Prewitt, Laplace.

Each block is filtered by the scipy function itself, over the block plus a halo as
wide as the kernel reaches (its origin shift included), so every output voxel sees
the input it sees in the whole array. Boundary modes, wrap included, work as for
every `_Filter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy

from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect
from chunkwise.ops._filters import _Filter, dtype_field, origin_field
from chunkwise.ops._kernels import KERNEL_PRESETS
from chunkwise.ops._params import (
    check_array,
    check_dtype,
    check_number,
    nested_tuples,
    per_axis,
)
from chunkwise.ops._registry import exact_as, param, register

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["check_kernel", "convolve", "correlate", "laplace", "prewitt", "sobel"]


def check_kernel(value: object) -> tuple:
    """Return a kernel as nested tuples of float64 values, the weights scipy uses.

    ``value`` is nested lists or tuples, a numpy array, JSON text of nested lists
    or the path of a ``.npy`` file (read once, here: a record never needs it again).
    """
    array = check_array("kernel", value)
    if array.ndim == 0:
        raise ChunkwiseError(f"kernel must be an array, not the single number {value}")
    weights = array.astype(np.float64)
    if not np.isfinite(weights).all():
        raise ChunkwiseError("kernel must hold finite numbers, not nan or inf")
    return nested_tuples(weights)


def _dtype_or_none(value: object) -> str | None:
    return None if value is None else check_dtype("dtype", value)


@dataclass(frozen=True)
class _Kernel(_Filter):
    """`correlate` or `convolve`: the scipy function named, with ``kernel``."""

    kernel: npt.ArrayLike | str = param(kind="array", choices=KERNEL_PRESETS)
    origin: int | tuple[int, ...] = origin_field()
    dtype: str | None = dtype_field()
    family = "linear"
    labels = LabelEffect.DROPS
    #: scipy's correlate and convolve take one mode for all axes.
    mode_sequence = False
    scipy_filter: ClassVar[str]
    #: Whether scipy mirrors the kernel (a convolution).
    mirrored: ClassVar[bool]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", check_kernel(self.kernel))
        super().__post_init__()
        object.__setattr__(self, "dtype", _dtype_or_none(self.dtype))
        shape = self.kernel_shape
        if isinstance(self.origin, tuple) and len(self.origin) != len(shape):
            raise ChunkwiseError(
                f"origin has {len(self.origin)} values but the kernel has "
                f"{len(shape)} dimensions"
            )
        for axis, (o, n) in enumerate(zip(self._kernel_origins(), shape, strict=True)):
            if not -(n // 2) <= o <= (n - 1) // 2:
                raise ChunkwiseError(
                    f"origin {o} is outside the kernel's {n} voxels along its axis "
                    f"{axis}; it must be within {-(n // 2)}..{(n - 1) // 2}"
                )

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """The kernel's shape."""
        return np.shape(self.kernel)

    def weights(self) -> np.ndarray:
        """The kernel as a float64 array."""
        return np.array(self.kernel, dtype=np.float64)

    def kernel_axes(self, ndim: int) -> tuple[int, ...]:
        """The data axes the kernel's axes lie along, for data of ``ndim`` axes."""
        k = len(self.kernel_shape)
        spatial = spatial_axes(ndim)
        if k == ndim:
            return tuple(range(ndim))
        if k == len(spatial):
            return spatial
        wanted = f"{ndim}" if len(spatial) == ndim else f"{len(spatial)} or {ndim}"
        raise ChunkwiseError(
            f"kernel has {k} dimensions; data of {ndim} dimensions needs a kernel "
            f"of {wanted}"
        )

    def _on_kernel_axes(self, values: tuple, ndim: int, neutral: Any) -> tuple:
        full = [neutral] * ndim
        for axis, value in zip(self.kernel_axes(ndim), values, strict=True):
            full[axis] = value
        return tuple(full)

    def halo(self, ndim: int) -> tuple[int, ...]:
        return self._on_kernel_axes(tuple(n // 2 for n in self.kernel_shape), ndim, 0)

    def _kernel_origins(self) -> tuple[int, ...]:
        """``origin`` on each kernel axis."""
        if isinstance(self.origin, tuple):
            return self.origin
        return (self.origin,) * len(self.kernel_shape)

    def origins(self, ndim: int) -> tuple[int, ...]:
        return self._on_kernel_axes(self._kernel_origins(), ndim, 0)

    def reach(self, ndim: int) -> tuple[int, ...]:
        """The kernel's farthest reach from an output voxel, on either side.

        The same on both sides: at a face, a mirroring mode reflects the voxels on
        the other side of the output, as far as the kernel reaches past it.
        """
        reaches = []
        for n, origin in zip(self.kernel_shape, self._scipy_origins(), strict=True):
            before = n // 2 + origin  # scipy's correlate reads [i - before, i + after]
            reaches.append(max(before, n - 1 - before))
        return self._on_kernel_axes(tuple(reaches), ndim, 0)

    def _scipy_origins(self) -> tuple[int, ...]:
        """The origins of the correlation scipy runs (a convolution's are mirrored)."""
        origins = self._kernel_origins()
        if not self.mirrored:
            return origins
        return tuple(
            -o - (1 - n % 2) for o, n in zip(origins, self.kernel_shape, strict=True)
        )

    def modes(self, ndim: int) -> tuple[str, ...]:
        return self._on_kernel_axes(
            (self.mode,) * len(self.kernel_shape), ndim, "constant"
        )

    def check_shape(self, shape: Sequence[int]) -> None:
        """Accept any kernel: its size, and so its cost, is the user's own."""

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(dtype if self.dtype is None else self.dtype)

    def filter(self, data: np.ndarray) -> np.ndarray:
        function = getattr(scipy.ndimage, self.scipy_filter)
        return function(
            data,
            self.weights(),
            output=self.output_dtype(data.dtype),
            mode=self.mode,
            cval=self.cval,
            origin=self.origin,
            axes=self.kernel_axes(data.ndim),
        )


_KERNEL_PARAMETERS = """
    Parameters
    ----------
    kernel : array_like or str
        The weights: nested lists of numbers, a numpy array or the path of a
        ``.npy`` file, read once (the operation keeps the numbers). It has one
        dimension per spatial axis (or one per axis of the data).
    mode : str
        Boundary mode, as in scipy.ndimage (``reflect``, ``constant``, ``nearest``,
        ``mirror``, ``wrap`` and the ``grid-`` aliases); one for all axes.
    cval : float
        Value outside the volume for ``constant`` modes.
    origin : int or tuple of int
        Shift of the kernel's centre, for all kernel axes or one per axis, as in
        scipy.ndimage: within ``-(n // 2)..(n - 1) // 2`` for a kernel ``n`` long.
    dtype : str or None
        Output dtype (None: the input's), as scipy's ``output=dtype``: the sums
        are computed in float64 and cast to it.
"""


@register
@dataclass(frozen=True)
class correlate(_Kernel):
    __doc__ = (
        """Correlation with any kernel, exactly ``scipy.ndimage.correlate``.

    Each output voxel is the sum of the kernel's weights times the input voxels
    under it, the kernel's centre on the voxel.
    """
        + _KERNEL_PARAMETERS
        + """
    Examples
    --------
    >>> import numpy as np
    >>> correlate([[0, 1, 0], [1, -4, 1], [0, 1, 0]])(np.eye(3, dtype=np.float32))
    array([[-2.,  2.,  0.],
           [ 2., -4.,  2.],
           [ 0.,  2., -2.]], dtype=float32)
    """
    )
    name = "correlate"
    exactness = exact_as("scipy.ndimage.correlate")
    scipy_filter = "correlate"
    mirrored = False


@register
@dataclass(frozen=True)
class convolve(_Kernel):
    __doc__ = (
        """Convolution with any kernel, exactly ``scipy.ndimage.convolve``.

    A correlation with the kernel mirrored along each axis (and scipy's origin
    rule for even lengths).
    """
        + _KERNEL_PARAMETERS
        + """
    Examples
    --------
    >>> import numpy as np
    >>> convolve([[1, 2]], mode="constant")(np.eye(2, dtype=np.float32))
    array([[2., 0.],
           [1., 2.]], dtype=float32)
    """
    )
    name = "convolve"
    exactness = exact_as("scipy.ndimage.convolve")
    scipy_filter = "convolve"
    mirrored = True


@dataclass(frozen=True)
class _Derivative(_Filter):
    """A 3-voxel derivative filter over the spatial axes."""

    dtype: str | None = dtype_field()
    family = "linear"
    labels = LabelEffect.DROPS

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "dtype", _dtype_or_none(self.dtype))

    def halo(self, ndim: int) -> tuple[int, ...]:
        return per_axis("halo", 1, ndim, 0)

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(dtype if self.dtype is None else self.dtype)


@dataclass(frozen=True)
class _Edge(_Derivative):
    """`sobel` or `prewitt`: a derivative along ``axis``, smoothed along the others."""

    axis: int = param(-1, low=-3, high=2, step=1)
    scipy_filter: ClassVar[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "axis", check_number("axis", self.axis, integer=True))

    def check(self, ndim: int) -> None:
        super().check(ndim)
        n = len(spatial_axes(ndim))
        if not -n <= self.axis < n:
            raise ChunkwiseError(
                f"axis {self.axis} is not a spatial axis of {ndim}-dimensional data; "
                f"use 0..{n - 1} or -1..-{n}"
            )

    def filter(self, data: np.ndarray) -> np.ndarray:
        # scipy's sobel and prewitt smooth along every axis of what they are given
        # (they take no ``axes``): they get one plane or volume of the spatial axes
        # at a time, so time points and channels never mix.
        out = np.empty(data.shape, self.output_dtype(data.dtype))
        function = getattr(scipy.ndimage, self.scipy_filter)
        for index in np.ndindex(data.shape[: spatial_axes(data.ndim)[0]]):
            function(data[index], self.axis, out[index], mode=self.mode, cval=self.cval)
        return out


_EDGE_PARAMETERS = """
    Parameters
    ----------
    axis : int
        The spatial axis of the derivative: 0, 1, 2 or -1 (the last), -2, -3;
        0 is z for 3D data and y for 2D data, as scipy counts them.
    mode : str or tuple of str
        Boundary mode, as in scipy.ndimage (``reflect``, ``constant``, ``nearest``,
        ``mirror``, ``wrap`` and the ``grid-`` aliases), or one per spatial axis.
    cval : float
        Value outside the volume for ``constant`` modes.
    dtype : str or None
        Output dtype (None: the input's, where integer results wrap around as
        scipy's do), as scipy's ``output=dtype``.
"""


@register
@dataclass(frozen=True)
class sobel(_Edge):
    __doc__ = (
        """Sobel derivative along ``axis``, exactly ``scipy.ndimage.sobel``.

    The difference ``[-1, 0, 1]`` along ``axis``, smoothed by ``[1, 2, 1]`` along
    each other spatial axis.
    """
        + _EDGE_PARAMETERS
        + """
    Examples
    --------
    >>> import numpy as np
    >>> sobel(axis=1)(np.array([[0, 0, 1, 1]] * 3, dtype=np.float32))
    array([[0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.]], dtype=float32)
    """
    )
    name = "sobel"
    exactness = exact_as("scipy.ndimage.sobel")
    scipy_filter = "sobel"


@register
@dataclass(frozen=True)
class prewitt(_Edge):
    __doc__ = (
        """Prewitt derivative along ``axis``, exactly ``scipy.ndimage.prewitt``.

    The difference ``[-1, 0, 1]`` along ``axis``, smoothed by ``[1, 1, 1]`` along
    each other spatial axis.
    """
        + _EDGE_PARAMETERS
        + """
    Examples
    --------
    >>> import numpy as np
    >>> prewitt(axis=1)(np.array([[0, 0, 1, 1]] * 3, dtype=np.float32))
    array([[0., 3., 3., 0.],
           [0., 3., 3., 0.],
           [0., 3., 3., 0.]], dtype=float32)
    """
    )
    name = "prewitt"
    exactness = exact_as("scipy.ndimage.prewitt")
    scipy_filter = "prewitt"


@register
@dataclass(frozen=True)
class laplace(_Derivative):
    """Laplace filter, exactly ``scipy.ndimage.laplace``.

    The sum over the spatial axes of the second differences ``[1, -2, 1]``.

    Parameters
    ----------
    mode : str or tuple of str
        Boundary mode, as in scipy.ndimage (``reflect``, ``constant``, ``nearest``,
        ``mirror``, ``wrap`` and the ``grid-`` aliases), or one per spatial axis.
    cval : float
        Value outside the volume for ``constant`` modes.
    dtype : str or None
        Output dtype (None: the input's, where integer results wrap around as
        scipy's do), as scipy's ``output=dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> laplace()(np.eye(3, dtype=np.float32))
    array([[-2.,  2.,  0.],
           [ 2., -4.,  2.],
           [ 0.,  2., -2.]], dtype=float32)
    """

    name = "laplace"
    exactness = exact_as("scipy.ndimage.laplace")

    def filter(self, data: np.ndarray) -> np.ndarray:
        return scipy.ndimage.laplace(
            data, output=self.output_dtype(data.dtype), **self._scipy_kwargs(data.ndim)
        )
