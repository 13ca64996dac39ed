"""Neighbourhood filters: scipy.ndimage over each block plus a halo.

A block is read with a halo as wide as the filter's reach, so every output voxel sees
exactly the input it would see in the whole array. At the volume's faces the block's
edge *is* the volume's edge, so scipy's own boundary mode applies there unchanged; for
the ``wrap`` modes the halo is filled from the opposite face before filtering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy

from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import Operation
from chunkwise.ops._params import check_choice, check_number, check_per_axis, per_axis

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chunkwise._geometry import Box

__all__ = [
    "MODES",
    "difference_of_gaussians",
    "gaussian",
    "gradient_magnitude",
    "laplace_of_gaussian",
    "maximum",
    "median",
    "minimum",
    "uniform",
    "unsharp_mask",
]

MODES = (
    "reflect",
    "constant",
    "nearest",
    "mirror",
    "wrap",
    "grid-constant",
    "grid-mirror",
    "grid-wrap",
)
WRAP_MODES = ("wrap", "grid-wrap")
#: A kernel may reach this many voxels past any axis: a small isotropic sigma on
#: a volume of one or a few planes is normal. Beyond it, and beyond twice the
#: axis's length, the kernel is a mistake (sigma in micrometres, say) whose run
#: would take hours: sigma 1e6 is 8e6 multiplications per voxel and axis.
FREE_REACH = 64


def gaussian_radius(sigma: float, truncate: float) -> int:
    """Reach of scipy's Gaussian kernel: ``int(truncate * sigma + 0.5)`` voxels."""
    return int(truncate * sigma + 0.5) if sigma > 1e-15 else 0


def float_dtype(dtype: np.dtype) -> np.dtype:
    """Float dtype for computing on ``dtype``: float64 for float64, else float32."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


@dataclass(frozen=True)
class _Filter(Operation):
    """A neighbourhood filter; subclasses give the halo and the scipy call."""

    mode: str = field(default="reflect", kw_only=True)
    cval: float = field(default=0.0, kw_only=True)
    #: The parameter that sets the reach (`halo`), named in errors.
    reach_parameter: ClassVar[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", check_choice("mode", self.mode, MODES))
        object.__setattr__(self, "cval", check_number("cval", self.cval))

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Voxels of input needed beyond the output box, per axis."""
        raise NotImplementedError

    def check_shape(self, shape: Sequence[int]) -> None:
        """Refuse a kernel reaching past twice an axis's length (and `FREE_REACH`)."""
        name = self.reach_parameter
        values = per_axis(name, getattr(self, name), len(shape), 0)
        reaches = self.halo(len(shape))
        for axis, (reach, n) in enumerate(zip(reaches, shape, strict=True)):
            if reach > max(2 * n, FREE_REACH):
                raise ChunkwiseError(
                    f"{name} {values[axis]:g} needs a kernel reaching {reach} voxels "
                    f"along axis {axis}, more than twice its length {n}"
                )

    def filter(self, data: np.ndarray) -> np.ndarray:
        """Run the filter on a block."""
        raise NotImplementedError

    def check(self, ndim: int) -> None:
        self.halo(ndim)

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        grown = box.grow(self.halo(len(shape)))
        return grown if self.mode in WRAP_MODES else grown.clip(shape)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        return self.filter(data)[box.relative_to(data_box)]

    def _spatial(self, name: str, value: object, ndim: int, neutral: float) -> tuple:
        full = per_axis(name, value, ndim, neutral)
        return tuple(full[axis] for axis in spatial_axes(ndim))

    def _scipy_kwargs(self, ndim: int) -> dict:
        return {"mode": self.mode, "cval": self.cval, "axes": spatial_axes(ndim)}


@dataclass(frozen=True)
class _GaussianBased(_Filter):
    """Filters built on Gaussian kernels, whose reach is ``truncate`` sigmas."""

    truncate: float = field(default=4.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        truncate = check_number("truncate", self.truncate, low=0, strict_low=True)
        object.__setattr__(self, "truncate", truncate)

    def _check_sigma(self, name: str) -> None:
        value = check_per_axis(name, getattr(self, name), low=0)
        object.__setattr__(self, name, value)

    def _radius(self, name: str, ndim: int) -> tuple[int, ...]:
        sigmas = per_axis(name, getattr(self, name), ndim, 0)
        return tuple(gaussian_radius(s, self.truncate) for s in sigmas)


@dataclass(frozen=True)
class _Smoothing(_GaussianBased):
    """A Gaussian-based filter with one ``sigma``."""

    sigma: float | tuple[float, ...] = 1.0
    reach_parameter = "sigma"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sigma("sigma")

    def halo(self, ndim: int) -> tuple[int, ...]:
        return self._radius("sigma", ndim)

    def _gaussian_kwargs(self, ndim: int) -> dict:
        sigma = self._spatial("sigma", self.sigma, ndim, 0)
        return {"sigma": sigma, "truncate": self.truncate, **self._scipy_kwargs(ndim)}


@dataclass(frozen=True)
class gaussian(_Smoothing):
    """Gaussian smoothing, exactly ``scipy.scipy.ndimage.gaussian_filter``.

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation in voxels, for all spatial axes or one per axis; 0 on an
        axis leaves that axis unfiltered.
    mode : str
        Boundary mode, as in scipy.ndimage (``reflect``, ``constant``, ``nearest``,
        ``mirror``, ``wrap`` and the ``grid-`` aliases).
    cval : float
        Value outside the volume for ``constant`` modes.
    truncate : float
        Kernel reach in standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> gaussian(1.0)(np.eye(3, dtype=np.float32)).round(2)
    array([[0.5 , 0.33, 0.17],
           [0.33, 0.34, 0.33],
           [0.17, 0.33, 0.5 ]], dtype=float32)
    """

    name = "gaussian"
    label_safe = False

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        # scipy's gaussian_filter is one gaussian_filter1d pass per axis, in axis
        # order, each stored in the output dtype. Once an axis is filtered its halo
        # is spent, so it is cropped before the next pass: the same values, less
        # work (a preview plane then filters one plane, not 2 * radius + 1, along y
        # and x).
        sigmas = per_axis("sigma", self.sigma, data.ndim, 0)
        crop = box.relative_to(data_box)
        out = data
        for axis, sigma in enumerate(sigmas):
            keep = crop[axis]
            if sigma > 1e-15:
                radius = int(self.truncate * float(sigma) + 0.5)
                few = 4 * (keep.stop - keep.start) <= out.shape[axis]
                inside = keep.start >= radius and keep.stop + radius <= out.shape[axis]
                if few and inside:
                    out = _gaussian_pass_at(out, float(sigma), radius, axis, keep)
                    continue
                out = scipy.ndimage.gaussian_filter1d(
                    out,
                    sigma,
                    axis=axis,
                    output=data.dtype,
                    mode=self.mode,
                    cval=self.cval,
                    truncate=self.truncate,
                )
            out = out[(slice(None),) * axis + (keep,)]
        return out


def _gaussian_pass_at(
    data: np.ndarray, sigma: float, radius: int, axis: int, keep: slice
) -> np.ndarray:
    """Run scipy's ``gaussian_filter1d`` along ``axis`` at the positions ``keep`` only.

    A preview plane needs one output plane of the first pass, which scipy would
    compute at all 2 * radius + 1 input planes: 67 of the 73 ms a 512² Gaussian
    preview took. This is the same arithmetic as scipy's symmetric-kernel loop
    (in float64: the centre times its weight, plus each pair of neighbours, the
    outermost first, times theirs; then a cast to the dtype), on ``keep`` only, with
    scipy's own kernel; the tests check it voxel for voxel against scipy. Called
    only where the kernel stays inside ``data``, so no boundary mode applies.
    """
    from scipy.ndimage._filters import _gaussian_kernel1d  # scipy's own weights

    weights = _gaussian_kernel1d(sigma, 0, radius)[::-1]
    lines = np.moveaxis(data, axis, 0)
    start, stop = keep.start, keep.stop
    total = lines[start:stop].astype(np.float64) * weights[radius]
    for k in range(radius, 0, -1):
        pair = lines[start - k : stop - k].astype(np.float64)
        pair += lines[start + k : stop + k]
        pair *= weights[radius - k]
        total += pair
    return np.moveaxis(total.astype(data.dtype), 0, axis)


@dataclass(frozen=True)
class gradient_magnitude(_Smoothing):
    """Gradient magnitude from Gaussian derivatives (``gaussian_gradient_magnitude``).

    The output keeps the input dtype, as scipy's does (use ``astype`` first for a
    float result).

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation of the Gaussian derivatives, in voxels.
    mode, cval, truncate
        As for `gaussian`.
    """

    name = "gradient_magnitude"
    label_safe = False

    def filter(self, data: np.ndarray) -> np.ndarray:
        # scipy applies ``axes`` to the derivatives but not to the smoothing: give a
        # sigma for every axis, 0 on non-spatial ones, so that they are never mixed.
        kwargs = self._gaussian_kwargs(data.ndim)
        kwargs["sigma"] = per_axis("sigma", self.sigma, data.ndim, 0)
        return scipy.ndimage.gaussian_gradient_magnitude(data, **kwargs)


@dataclass(frozen=True)
class laplace_of_gaussian(_Smoothing):
    """Laplacian of Gaussian, exactly ``scipy.scipy.ndimage.gaussian_laplace``.

    The output keeps the input dtype, as scipy's does (use ``astype`` first for a
    signed or float result).

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation in voxels.
    mode, cval, truncate
        As for `gaussian`.
    """

    name = "laplace_of_gaussian"
    label_safe = False

    def filter(self, data: np.ndarray) -> np.ndarray:
        return scipy.ndimage.gaussian_laplace(data, **self._gaussian_kwargs(data.ndim))


@dataclass(frozen=True)
class unsharp_mask(_Smoothing):
    """Sharpen: ``x + amount * (x - gaussian(x, sigma))``, computed in float.

    The output is float64 for float64 input and float32 otherwise.

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation of the blur that is subtracted.
    amount : float
        Strength of the sharpening, >= 0.
    mode, cval, truncate
        As for `gaussian`.
    """

    name = "unsharp_mask"
    label_safe = False
    amount: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "amount", check_number("amount", self.amount, low=0))

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return float_dtype(dtype)

    def filter(self, data: np.ndarray) -> np.ndarray:
        values = data.astype(float_dtype(data.dtype))
        blurred = scipy.ndimage.gaussian_filter(
            values, **self._gaussian_kwargs(data.ndim)
        )
        return values + values.dtype.type(self.amount) * (values - blurred)


@dataclass(frozen=True)
class difference_of_gaussians(_GaussianBased):
    """Band-pass: ``gaussian(x, low) - gaussian(x, high)``, computed in float.

    The output is float64 for float64 input and float32 otherwise.

    Parameters
    ----------
    low : float or tuple of float
        Smaller standard deviation (0 keeps the input as it is).
    high : float or tuple of float
        Larger standard deviation, >= ``low`` on every axis.
    mode, cval, truncate
        As for `gaussian`.

    References
    ----------
    .. [1] ``skimage.filters.difference_of_gaussians``.
    """

    name = "difference_of_gaussians"
    label_safe = False
    low: float | tuple[float, ...] = 1.0
    high: float | tuple[float, ...] = 2.0
    reach_parameter = "high"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sigma("low")
        self._check_sigma("high")
        if not (isinstance(self.low, tuple) or isinstance(self.high, tuple)):
            self.check(3)

    def check(self, ndim: int) -> None:
        lows = per_axis("low", self.low, ndim, 0)
        highs = per_axis("high", self.high, ndim, 0)
        if any(lo > hi for lo, hi in zip(lows, highs, strict=True)):
            raise ChunkwiseError(
                f"high must be >= low on every axis, got low={self.low!r}, "
                f"high={self.high!r}"
            )

    def halo(self, ndim: int) -> tuple[int, ...]:
        return self._radius("high", ndim)

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return float_dtype(dtype)

    def filter(self, data: np.ndarray) -> np.ndarray:
        values = data.astype(float_dtype(data.dtype))
        kwargs = self._scipy_kwargs(data.ndim) | {"truncate": self.truncate}
        low = self._spatial("low", self.low, data.ndim, 0)
        high = self._spatial("high", self.high, data.ndim, 0)
        return scipy.ndimage.gaussian_filter(
            values, low, **kwargs
        ) - scipy.ndimage.gaussian_filter(values, high, **kwargs)


@dataclass(frozen=True)
class _SizeFilter(_Filter):
    """A filter over a box of ``size`` voxels, run by the scipy function named."""

    size: int | tuple[int, ...] = 3
    scipy_filter: ClassVar[str]
    reach_parameter = "size"

    def __post_init__(self) -> None:
        super().__post_init__()
        size = check_per_axis("size", self.size, low=0, integer=True)
        object.__setattr__(self, "size", size)

    def sizes(self, ndim: int) -> tuple[int, ...]:
        """Window size per spatial axis; 0 means 1 (no filtering)."""
        return tuple(max(s, 1) for s in self._spatial("size", self.size, ndim, 1))

    def halo(self, ndim: int) -> tuple[int, ...]:
        return tuple(max(s, 1) // 2 for s in per_axis("size", self.size, ndim, 1))

    def filter(self, data: np.ndarray) -> np.ndarray:
        function = getattr(scipy.ndimage, self.scipy_filter)
        return function(
            data, size=self.sizes(data.ndim), **self._scipy_kwargs(data.ndim)
        )


_SIZE_DOC = """{title}, exactly ``scipy.ndimage.{scipy}``.

    Parameters
    ----------
    size : int or tuple of int
        Window size in voxels, for all spatial axes or one per axis; 0 or 1 on an
        axis leaves that axis unfiltered.
    mode : str
        Boundary mode, as in scipy.ndimage.
    cval : float
        Value outside the volume for ``constant`` modes.
    """


@dataclass(frozen=True)
class median(_SizeFilter):
    __doc__ = _SIZE_DOC.format(title="Median filter", scipy="median_filter")
    name = "median"
    label_safe = True
    scipy_filter = "median_filter"


@dataclass(frozen=True)
class uniform(_SizeFilter):
    __doc__ = (
        _SIZE_DOC.format(title="Mean over a box", scipy="uniform_filter")
        + """
    Notes
    -----
    scipy computes this with a running sum along each line, so for float data its
    last bits depend on where a line starts; chunkwise then agrees with it to about
    1e-12 relative. Integer data is exact.
    """
    )
    name = "uniform"
    label_safe = False
    scipy_filter = "uniform_filter"


@dataclass(frozen=True)
class minimum(_SizeFilter):
    __doc__ = _SIZE_DOC.format(
        title="Minimum over a box (grey erosion)", scipy="minimum_filter"
    )
    name = "minimum"
    label_safe = True
    scipy_filter = "minimum_filter"


@dataclass(frozen=True)
class maximum(_SizeFilter):
    __doc__ = _SIZE_DOC.format(
        title="Maximum over a box (grey dilation)", scipy="maximum_filter"
    )
    name = "maximum"
    label_safe = True
    scipy_filter = "maximum_filter"
