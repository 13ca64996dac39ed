"""Neighbourhood filters: scipy.ndimage over each block plus a halo.

A block is read with a halo as wide as the filter's reach, so every output voxel sees
exactly the input it would see in the whole array. At the volume's faces the block's
edge *is* the volume's edge, so scipy's own boundary mode applies there unchanged; for
the ``wrap`` modes the halo is filled from the opposite face before filtering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy

from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect, Operation
from chunkwise.ops._params import (
    DTYPES,
    check_choices,
    check_dtype,
    check_number,
    check_per_axis,
    per_axis,
)
from chunkwise.ops._registry import exact_as, param, register

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chunkwise._geometry import Box

__all__ = [
    "MODES",
    "difference_of_gaussians",
    "gaussian",
    "gradient_magnitude",
    "laplace_of_gaussian",
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


def gaussian_radius(sigma: float, truncate: float, radius: int | None = None) -> int:
    """Reach of scipy's Gaussian kernel: ``int(truncate * sigma + 0.5)`` voxels.

    ``radius`` replaces that where given; 0 where scipy skips the axis (sigma 0).
    """
    if sigma <= 1e-15:
        return 0
    return int(truncate * sigma + 0.5) if radius is None else radius


def float_dtype(dtype: np.dtype) -> np.dtype:
    """Float dtype for computing on ``dtype``: float64 for float64, else float32."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


def origin_field() -> Any:
    """The ``origin`` field of a filter whose scipy function shifts its window."""
    return param(0, kw_only=True, step=1, advanced=True)


def dtype_field() -> Any:
    """The ``dtype`` field of a filter that can write another dtype (None: same)."""
    return param(None, kw_only=True, kind="dtype", choices=DTYPES, advanced=True)


@dataclass(frozen=True)
class _Filter(Operation):
    """A neighbourhood filter; subclasses give the halo and the scipy call.

    A subclass implements `halo` (its reach at origin 0, the same on both sides)
    and `filter` (or `apply`), and passes ``**self._scipy_kwargs(ndim)`` to scipy.
    The base class does the rest, the same way for every filter:

    - ``mode`` is one of `MODES`, or a sequence of them, one per spatial axis
      (`modes` expands it to every axis). A class whose scipy function takes one
      mode only sets ``mode_sequence = False``, and a sequence is refused.
    - ``origin``: a class whose scipy function shifts its window declares
      ``origin: int | tuple[int, ...] = origin_field()`` and calls
      `_check_origin` from its ``check`` with its window's length per axis. The
      base validates the field, reads ``|origin|`` more halo (`reach`) so that
      every output voxel sees what the whole array gives it, and passes it on in
      `_scipy_kwargs`.
    - `input_box` grows the box by `reach` and clips it to the volume except
      along wrap axes, where `evaluate` fills the halo from the opposite face.
    """

    mode: str | tuple[str, ...] = param("reflect", kw_only=True, choices=MODES)
    cval: float = param(0.0, kw_only=True, advanced=True)
    #: The parameter that sets the reach (`halo`), named in errors.
    reach_parameter: ClassVar[str]
    #: Whether the scipy function takes a sequence of modes, one per axis.
    mode_sequence: ClassVar[bool] = True

    def __post_init__(self) -> None:
        mode = check_choices("mode", self.mode, MODES)
        if isinstance(mode, tuple) and not self.mode_sequence:
            raise ChunkwiseError(
                f"{self.name} takes one mode for all axes (scipy's takes no "
                f"sequence), got mode={mode!r}"
            )
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "cval", check_number("cval", self.cval))
        if hasattr(self, "origin"):
            origin = check_per_axis("origin", self.origin, integer=True)
            object.__setattr__(self, "origin", origin)

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Voxels of input needed beyond the output box at origin 0, per axis."""
        raise NotImplementedError

    def origins(self, ndim: int) -> tuple[int, ...]:
        """The window's shift per axis (0 where the class takes no ``origin``)."""
        return per_axis("origin", getattr(self, "origin", 0), ndim, 0)

    def modes(self, ndim: int) -> tuple[str, ...]:
        """The boundary mode of each axis."""
        return per_axis("mode", self.mode, ndim, "constant")

    def reach(self, ndim: int) -> tuple[int, ...]:
        """Voxels of input needed beyond the output box, per axis, origin included.

        The same on both sides: at a face, a mirroring mode reflects the voxels
        on the other side of the output, as far as the window reaches past it.
        """
        return tuple(
            h + abs(o) for h, o in zip(self.halo(ndim), self.origins(ndim), strict=True)
        )

    def check_shape(self, shape: Sequence[int]) -> None:
        """Refuse a kernel reaching past twice an axis's length (and `FREE_REACH`)."""
        reaches = self.halo(len(shape))
        for axis, (reach, n) in enumerate(zip(reaches, shape, strict=True)):
            if reach > max(2 * n, FREE_REACH):
                raise ChunkwiseError(
                    f"{self._reach_label(len(shape), axis)} needs a kernel reaching "
                    f"{reach} voxels along axis {axis}, more than twice its length {n}"
                )

    def _reach_label(self, ndim: int, axis: int) -> str:
        name = self.reach_parameter
        return f"{name} {per_axis(name, getattr(self, name), ndim, 0)[axis]:g}"

    def filter(self, data: np.ndarray) -> np.ndarray:
        """Run the filter on a block."""
        raise NotImplementedError

    def check(self, ndim: int) -> None:
        self.halo(ndim)
        self.modes(ndim)
        self.origins(ndim)

    def _check_origin(self, lengths: Sequence[int]) -> None:
        """Refuse an origin outside the window, as scipy does (``lengths`` per axis)."""
        for axis, (o, n) in enumerate(
            zip(self.origins(len(lengths)), lengths, strict=True)
        ):
            if not -(n // 2) <= o <= (n - 1) // 2:
                raise ChunkwiseError(
                    f"origin {o} is outside the window of {n} voxels along axis "
                    f"{axis}; it must be within {-(n // 2)}..{(n - 1) // 2}"
                )

    def input_box(self, box: Box, shape: Sequence[int]) -> Box:
        ndim = len(shape)
        periodic = [a for a, m in enumerate(self.modes(ndim)) if m in WRAP_MODES]
        return box.grow(self.reach(ndim)).clip(shape, keep=periodic)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        return self.filter(data)[box.relative_to(data_box)]

    def _spatial(self, name: str, value: object, ndim: int, neutral: float) -> tuple:
        full = per_axis(name, value, ndim, neutral)
        return tuple(full[axis] for axis in spatial_axes(ndim))

    def _scipy_kwargs(self, ndim: int) -> dict:
        kwargs = {"mode": self.mode, "cval": self.cval, "axes": spatial_axes(ndim)}
        if hasattr(self, "origin"):
            kwargs["origin"] = self._spatial("origin", self.origin, ndim, 0)
        return kwargs


@dataclass(frozen=True)
class _GaussianBased(_Filter):
    """Filters built on Gaussian kernels, whose reach is ``truncate`` sigmas.

    ``radius``, where given, sets the reach instead, one value or one per spatial
    axis, as scipy's ``radius=`` does.
    """

    truncate: float = param(4.0, kw_only=True, low=0.0, step=0.5, advanced=True)
    radius: int | tuple[int, ...] | None = param(
        None, kw_only=True, low=0, step=1, advanced=True
    )
    #: Added after runs were recorded without them: left out of records at their
    #: defaults, so that those runs still resume (`Operation.recent`).
    recent = ("radius", "dtype", "order")

    def __post_init__(self) -> None:
        super().__post_init__()
        truncate = check_number("truncate", self.truncate, low=0)
        object.__setattr__(self, "truncate", truncate)
        if self.radius is not None:
            radius = check_per_axis("radius", self.radius, low=0, integer=True)
            object.__setattr__(self, "radius", radius)

    def _check_sigma(self, name: str) -> None:
        value = check_per_axis(name, getattr(self, name), low=0)
        object.__setattr__(self, name, value)

    def _radii(self, ndim: int) -> tuple[int | None, ...]:
        """``radius`` on every axis (None: from ``truncate``)."""
        if self.radius is None:
            return (None,) * ndim
        return per_axis("radius", self.radius, ndim, 0)

    def _radius(self, name: str, ndim: int) -> tuple[int, ...]:
        sigmas = per_axis(name, getattr(self, name), ndim, 0)
        return tuple(
            gaussian_radius(s, self.truncate, r)
            for s, r in zip(sigmas, self._radii(ndim), strict=True)
        )

    def _reach_label(self, ndim: int, axis: int) -> str:
        if self.radius is None:
            return super()._reach_label(ndim, axis)
        return f"radius {self._radii(ndim)[axis]}"

    def _gaussian_kwargs(self, ndim: int) -> dict:
        """Keywords of scipy's ``gaussian_filter`` over the spatial axes."""
        return {
            "truncate": self.truncate,
            "radius": self.radius,
            **self._scipy_kwargs(ndim),
        }


@dataclass(frozen=True)
class _Smoothing(_GaussianBased):
    """A Gaussian-based filter with one ``sigma``."""

    sigma: float | tuple[float, ...] = param(1.0, low=0.0, step=0.5)
    reach_parameter = "sigma"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sigma("sigma")

    def halo(self, ndim: int) -> tuple[int, ...]:
        return self._radius("sigma", ndim)


@dataclass(frozen=True)
class _OutputDtype(_Smoothing):
    """A Gaussian filter whose output dtype is ``dtype`` (None: the input's)."""

    dtype: str | None = dtype_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype is not None:
            object.__setattr__(self, "dtype", check_dtype("dtype", self.dtype))

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(dtype if self.dtype is None else self.dtype)


@register
@dataclass(frozen=True)
class gaussian(_OutputDtype):
    """Gaussian smoothing or derivative, exactly ``scipy.ndimage.gaussian_filter``.

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation in voxels, for all spatial axes or one per axis; 0 on an
        axis leaves that axis unfiltered.
    order : int or tuple of int
        Derivative order along all spatial axes or one per axis: 0 smooths, 1 is
        the first derivative of the Gaussian, 2 the second, and so on.
    mode : str or tuple of str
        Boundary mode, as in scipy.ndimage (``reflect``, ``constant``, ``nearest``,
        ``mirror``, ``wrap`` and the ``grid-`` aliases), or one per spatial axis.
    cval : float
        Value outside the volume for ``constant`` modes.
    truncate : float
        Kernel reach in standard deviations.
    radius : int or tuple of int or None
        Kernel reach in voxels, for all spatial axes or one per axis; it overrides
        ``truncate`` (None: ``int(truncate * sigma + 0.5)``).
    dtype : str or None
        Output dtype (None: the input's), as scipy's ``output=dtype``: each pass
        along an axis is stored in it.

    Examples
    --------
    >>> import numpy as np
    >>> gaussian(1.0)(np.eye(3, dtype=np.float32)).round(2)
    array([[0.5 , 0.33, 0.17],
           [0.33, 0.34, 0.33],
           [0.17, 0.33, 0.5 ]], dtype=float32)
    """

    name = "gaussian"
    exactness = exact_as("scipy.ndimage.gaussian_filter")
    family = "neighbourhood"
    labels = LabelEffect.DROPS
    order: int | tuple[int, ...] = param(0, kw_only=True, low=0, step=1, advanced=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        order = check_per_axis("order", self.order, low=0, integer=True)
        object.__setattr__(self, "order", order)

    def check(self, ndim: int) -> None:
        super().check(ndim)
        per_axis("order", self.order, ndim, 0)

    def apply(self, data: np.ndarray, data_box: Box, box: Box) -> np.ndarray:
        # scipy's gaussian_filter is one gaussian_filter1d pass per axis, in axis
        # order, each stored in the output dtype. Once an axis is filtered its halo
        # is spent, so it is cropped before the next pass: the same values, less
        # work (a preview plane then filters one plane, not 2 * radius + 1, along y
        # and x).
        ndim = data.ndim
        sigmas = per_axis("sigma", self.sigma, ndim, 0)
        passes = zip(
            sigmas,
            per_axis("order", self.order, ndim, 0),
            self.modes(ndim),
            self._radius("sigma", ndim),
            box.relative_to(data_box),
            strict=True,
        )
        dtype = self.output_dtype(data.dtype)
        out = data
        for axis, (sigma, order, mode, radius, keep) in enumerate(passes):
            if sigma > 1e-15:
                few = 4 * (keep.stop - keep.start) <= out.shape[axis]
                inside = keep.start >= radius and keep.stop + radius <= out.shape[axis]
                if few and inside and order == 0 and _casts_alike(out.dtype, dtype):
                    out = _gaussian_pass_at(out, sigma, radius, axis, keep, dtype)
                    continue
                out = scipy.ndimage.gaussian_filter1d(
                    out,
                    sigma,
                    axis=axis,
                    order=order,
                    output=dtype,
                    mode=mode,
                    cval=self.cval,
                    truncate=self.truncate,
                    radius=radius,
                )
            out = out[(slice(None),) * axis + (keep,)]
        return out if out.dtype == dtype else out.astype(dtype)


def _casts_alike(source: np.dtype, dtype: np.dtype) -> bool:
    """Whether numpy's cast of a smoothed ``source`` value to ``dtype`` is scipy's.

    Always for a float ``dtype``; for an integer one, when a weighted mean of values
    of ``dtype`` itself stays inside its range (C leaves casts of values outside it
    undefined, and numpy and scipy differ there).
    """
    return dtype.kind == "f" or (source == dtype and dtype.itemsize <= 4)


def _gaussian_pass_at(
    data: np.ndarray,
    sigma: float,
    radius: int,
    axis: int,
    keep: slice,
    dtype: np.dtype,
) -> np.ndarray:
    """Run scipy's ``gaussian_filter1d`` along ``axis`` at the positions ``keep`` only.

    A preview plane needs one output plane of the first pass, which scipy would
    compute at all 2 * radius + 1 input planes: 67 of the 73 ms a 512² Gaussian
    preview took. This is the same arithmetic as scipy's symmetric-kernel loop
    (in float64: the centre times its weight, plus each pair of neighbours, the
    outermost first, times theirs; then a cast to ``dtype``), on ``keep`` only, with
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
    return np.moveaxis(total.astype(dtype), 0, axis)


_DERIVATIVE_AXES = """
    The derivatives are taken along the spatial axes whose sigma is above 0 only
    (scipy's ``axes=`` limited to them); an axis of sigma 0 is neither
    differentiated nor smoothed, and at least one sigma must be above 0.
"""


def _derivative_axes(sigma: object, ndim: int) -> tuple[int, ...]:
    """The spatial axes of ``ndim`` with sigma above 0."""
    sigmas = per_axis("sigma", sigma, ndim, 0)
    return tuple(a for a in spatial_axes(ndim) if sigmas[a] > 1e-15)


@dataclass(frozen=True)
class _GaussianDerivatives(_OutputDtype):
    """A sum over the axes with sigma > 0 of one Gaussian derivative each.

    scipy filters the term of axis ``i`` with ``mode[i]`` along every axis, so a
    mode sequence cannot mix wrap and other modes: a block is either wrapped or
    cut at the volume's faces along each axis, for all terms at once.
    """

    family = "features"
    labels = LabelEffect.DROPS
    scipy_filter: ClassVar[str]
    #: Whether the scipy function takes a sigma per axis of ``axes`` (else per axis).
    sigma_on_axes: ClassVar[bool]

    def __post_init__(self) -> None:
        super().__post_init__()
        sigmas = self.sigma if isinstance(self.sigma, tuple) else (self.sigma,)
        if all(s <= 1e-15 for s in sigmas):
            raise ChunkwiseError(
                f"sigma must be above 0 on at least one axis for {self.name}, "
                f"got {self.sigma!r}"
            )
        if isinstance(self.mode, tuple):
            n = len(self.mode)
            full = self.sigma if isinstance(self.sigma, tuple) else (self.sigma,) * n
            used = [m for m, s in zip(self.mode, full, strict=False) if s > 1e-15]
            if len({m in WRAP_MODES for m in used}) > 1:
                raise ChunkwiseError(
                    f"mode {self.mode!r} mixes wrap and other modes; {self.name} "
                    "applies each axis's mode along every axis, as scipy does"
                )

    def filter(self, data: np.ndarray) -> np.ndarray:
        ndim = data.ndim
        axes = _derivative_axes(self.sigma, ndim)
        modes = self.modes(ndim)
        mode = self.mode
        if isinstance(mode, tuple):
            mode = tuple(modes[a] for a in axes)
        # Each term is scipy's gaussian_filter over every axis (sigma 0 off
        # ``axes``), which takes a radius per axis.
        radius = self.radius
        if radius is not None:
            radius = per_axis("radius", radius, ndim, 0)
        sigma = per_axis("sigma", self.sigma, ndim, 0)
        if self.sigma_on_axes:
            sigma = tuple(sigma[a] for a in axes)
        return getattr(scipy.ndimage, self.scipy_filter)(
            data,
            sigma,
            output=self.output_dtype(data.dtype),
            mode=mode,
            cval=self.cval,
            axes=axes,
            truncate=self.truncate,
            radius=radius,
        )


_DERIVATIVE_PARAMETERS = """
    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation of the Gaussian derivatives, in voxels, for all spatial
        axes or one per axis; 0 on an axis: no derivative along it.
    mode : str or tuple of str
        Boundary mode, as in scipy.ndimage, or one per spatial axis: the mode of
        that axis's derivative term (not mixing ``wrap`` modes with others).
    cval, truncate, radius, dtype
        As for `gaussian`.
"""


@register
@dataclass(frozen=True)
class gradient_magnitude(_GaussianDerivatives):
    __doc__ = (
        """Gradient magnitude of Gaussian derivatives, exactly scipy's.

    ``scipy.ndimage.gaussian_gradient_magnitude``. The output keeps the input
    dtype, as scipy's does, unless ``dtype`` is given.
    """
        + _DERIVATIVE_AXES
        + _DERIVATIVE_PARAMETERS
    )
    name = "gradient_magnitude"
    exactness = exact_as("scipy.ndimage.gaussian_gradient_magnitude")
    scipy_filter = "gaussian_gradient_magnitude"
    sigma_on_axes = False


@register
@dataclass(frozen=True)
class laplace_of_gaussian(_GaussianDerivatives):
    __doc__ = (
        """Laplacian of Gaussian, exactly ``scipy.ndimage.gaussian_laplace``.

    The output keeps the input dtype, as scipy's does, unless ``dtype`` is given
    (a signed or float one keeps the negative values).
    """
        + _DERIVATIVE_AXES
        + _DERIVATIVE_PARAMETERS
    )
    name = "laplace_of_gaussian"
    exactness = exact_as("scipy.ndimage.gaussian_laplace")
    scipy_filter = "gaussian_laplace"
    sigma_on_axes = True


@register
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
    radius : int or tuple of int or None
        Reach in voxels of both kernels, overriding ``truncate`` (None: from
        ``truncate``), as for `gaussian`.

    References
    ----------
    .. [1] ``skimage.filters.difference_of_gaussians``.
    """

    name = "difference_of_gaussians"
    exactness = exact_as(
        "scipy.ndimage.gaussian_filter(x, low) - scipy.ndimage.gaussian_filter(x, "
        "high) in float"
    )
    family = "features"
    labels = LabelEffect.DROPS
    low: float | tuple[float, ...] = param(1.0, low=0.0, step=0.5)
    high: float | tuple[float, ...] = param(2.0, low=0.0, step=0.5)
    reach_parameter = "high"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_sigma("low")
        self._check_sigma("high")
        if not (isinstance(self.low, tuple) or isinstance(self.high, tuple)):
            self._check_low_high(3)

    def check(self, ndim: int) -> None:
        super().check(ndim)
        self._check_low_high(ndim)

    def _check_low_high(self, ndim: int) -> None:
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
        kwargs = self._gaussian_kwargs(data.ndim)
        low = self._spatial("low", self.low, data.ndim, 0)
        high = self._spatial("high", self.high, data.ndim, 0)
        return scipy.ndimage.gaussian_filter(
            values, low, **kwargs
        ) - scipy.ndimage.gaussian_filter(values, high, **kwargs)


@register
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
    mode, cval, truncate, radius
        As for `gaussian`.
    """

    name = "unsharp_mask"
    exactness = exact_as(
        "x + amount * (x - scipy.ndimage.gaussian_filter(x, sigma)) in float"
    )
    family = "features"
    labels = LabelEffect.DROPS
    amount: float = param(1.0, low=0.0, step=0.1)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "amount", check_number("amount", self.amount, low=0))

    def output_dtype(self, dtype: np.dtype) -> np.dtype:
        return float_dtype(dtype)

    def filter(self, data: np.ndarray) -> np.ndarray:
        values = data.astype(float_dtype(data.dtype))
        sigma = self._spatial("sigma", self.sigma, data.ndim, 0)
        blurred = scipy.ndimage.gaussian_filter(
            values, sigma, **self._gaussian_kwargs(data.ndim)
        )
        return values + values.dtype.type(self.amount) * (values - blurred)
