"""Filters over a window of voxels: a box of ``size`` voxels, or any ``footprint``.

The order statistics of the window (median, rank, percentile, minimum and maximum,
which are grey erosion and dilation) and its mean, each exactly its scipy.ndimage
function on the whole array. A window shifted by ``origin`` reads ``|origin|``
more halo on each side (see `_Filter`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import scipy

from chunkwise._geometry import spatial_axes
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._base import LabelEffect
from chunkwise.ops._filters import _Filter, origin_field
from chunkwise.ops._footprint import (
    MAX_FOOTPRINT,
    PRESETS,
    check_footprint,
    footprint_array,
    footprint_shape,
)
from chunkwise.ops._params import check_number, check_per_axis, per_axis
from chunkwise.ops._registry import exact_as, param, register

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "maximum",
    "median",
    "minimum",
    "percentile_filter",
    "rank_filter",
    "uniform",
]

#: The window of a filter given neither ``size`` nor ``footprint``, as in scipy.
DEFAULT_SIZE = 3


def size_field() -> Any:
    """The ``size`` field of a window filter: `DEFAULT_SIZE` voxels per axis."""
    return param(DEFAULT_SIZE, low=0, step=1)


def footprint_field() -> Any:
    """The ``footprint`` field of a filter whose scipy function takes one."""
    return param(None, kw_only=True, kind="array", choices=PRESETS)


@dataclass(frozen=True)
class _WindowFilter(_Filter):
    """A scipy.ndimage filter over a box of ``size`` voxels, or a ``footprint``.

    Subclasses declare ``size`` (default `DEFAULT_SIZE`) and ``origin``, and
    ``footprint`` where scipy takes one; a footprint replaces ``size``, which is
    then None.
    """

    # ``size`` is each subclass's field, after the fields scipy puts first (rank).
    family = "neighbourhood"
    reach_parameter = "size"
    recent = ("footprint", "origin")
    #: The scipy.ndimage function.
    scipy_filter: ClassVar[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        footprint = check_footprint(getattr(self, "footprint", None))
        if footprint is None:
            size = DEFAULT_SIZE if self.size is None else self.size
            size = check_per_axis("size", size, low=0, integer=True)
            object.__setattr__(self, "size", size)
        elif self.size is not None and not (
            isinstance(self.size, int) and self.size == DEFAULT_SIZE
        ):
            raise ChunkwiseError(
                f"{self.name} takes size or footprint, not both; got size={self.size!r}"
            )
        else:
            object.__setattr__(self, "size", None)
            object.__setattr__(self, "footprint", footprint)

    @property
    def _footprint(self) -> str | tuple | None:
        return getattr(self, "footprint", None)

    def window(self, ndim: int) -> tuple[int, ...]:
        """Window length per axis: 1 on the axes not filtered (and for size 0)."""
        if self._footprint is None:
            return tuple(max(s, 1) for s in per_axis("size", self.size, ndim, 1))
        spatial = spatial_axes(ndim)
        shape = footprint_shape(self._footprint, len(spatial))
        if len(shape) != len(spatial):
            raise ChunkwiseError(
                f"footprint has {len(shape)} dimensions but the data has "
                f"{len(spatial)} spatial axes (shape has {ndim} dimensions)"
            )
        return per_axis("footprint", tuple(shape), ndim, 1)

    def halo(self, ndim: int) -> tuple[int, ...]:
        return tuple(n // 2 for n in self.window(ndim))

    def check(self, ndim: int) -> None:
        super().check(ndim)
        window = self.window(ndim)
        if isinstance(self._footprint, str) and math.prod(window) > MAX_FOOTPRINT:
            raise ChunkwiseError(
                f"footprint {self._footprint} spans {math.prod(window):,} voxels; "
                f"at most {MAX_FOOTPRINT:,} are allowed"
            )
        self._check_origin(window)

    def _reach_label(self, ndim: int, axis: int) -> str:
        if self._footprint is None:
            return super()._reach_label(ndim, axis)
        if isinstance(self._footprint, str):
            return f"footprint {self._footprint}"
        return f"a footprint of shape {footprint_shape(self._footprint, ndim)}"

    def selected(self, ndim: int) -> np.ndarray | None:
        """The footprint over the spatial axes, or None for a full box of ``size``."""
        if self._footprint is None:
            return None
        return footprint_array(self._footprint, len(spatial_axes(ndim)))

    def count(self, ndim: int) -> int:
        """Number of voxels in the window."""
        selected = self.selected(ndim)
        if selected is None:
            return math.prod(self.window(ndim))
        return int(selected.sum())

    def _arguments(self) -> tuple:
        """Arguments of the scipy function between the array and the window."""
        return ()

    def filter(self, data: np.ndarray) -> np.ndarray:
        selected = self.selected(data.ndim)
        if selected is None:
            spatial = spatial_axes(data.ndim)
            window = {"size": tuple(self.window(data.ndim)[a] for a in spatial)}
        else:
            window = {"footprint": selected}
        function = getattr(scipy.ndimage, self.scipy_filter)
        return function(
            data, *self._arguments(), **window, **self._scipy_kwargs(data.ndim)
        )


_SIZE = """size : int or tuple of int
        Window size in voxels, for all spatial axes or one per axis; 0 or 1 on an
        axis leaves that axis unfiltered. Default 3."""
_FOOTPRINT = """footprint : str or nested lists of bool, optional
        The voxels of the window, instead of ``size``: a boolean array as nested
        lists (one level per spatial axis) or a ``.npy`` file, or a shape:
        ``ball:R`` (Euclidean distance <= R), ``cross:R`` (city-block distance
        <= R; ``cross`` is ``cross:1``) or ``box:N``."""
_ONE_MODE = """mode : str
        Boundary mode, as in scipy.ndimage: one for all axes (scipy's function
        takes no sequence)."""
_MODES = """mode : str or tuple of str
        Boundary mode, as in scipy.ndimage: one, or one per spatial axis."""
_EXTREMUM_MODES = """mode : str or tuple of str
        Boundary mode, as in scipy.ndimage: one, or one per spatial axis unless
        the footprint is not a full box."""
_ORIGIN = """origin : int or tuple of int
        Shift of the window, as in scipy.ndimage: positive moves it towards
        lower indices. Within ``-(n // 2)..(n - 1) // 2`` for a window of ``n``."""
_CVAL = """cval : float
        Value outside the volume for ``constant`` modes."""


def _doc(title: str, scipy_name: str, first: str, *, mode: str, footprint: bool) -> str:
    entries = [first, _SIZE] if first else [_SIZE]
    if footprint:
        entries.append(_FOOTPRINT)
    entries += [mode, _CVAL, _ORIGIN]
    body = "\n    ".join(entries)
    return f"""{title}, exactly ``scipy.ndimage.{scipy_name}``.

    Parameters
    ----------
    {body}
    """


@register
@dataclass(frozen=True)
class median(_WindowFilter):
    __doc__ = _doc("Median filter", "median_filter", "", mode=_ONE_MODE, footprint=True)
    name = "median"
    exactness = exact_as("scipy.ndimage.median_filter")
    labels = LabelEffect.KEEPS
    scipy_filter = "median_filter"
    mode_sequence = False
    size: int | tuple[int, ...] | None = size_field()
    footprint: str | tuple | None = footprint_field()
    origin: int | tuple[int, ...] = origin_field()


@register
@dataclass(frozen=True)
class uniform(_WindowFilter):
    __doc__ = (
        _doc("Mean over a box", "uniform_filter", "", mode=_MODES, footprint=False)
        + """
    Notes
    -----
    scipy computes this with a running sum along each line, so for float data its
    last bits depend on where a line starts; chunkwise then agrees with it to about
    1e-12 relative. Integer data is exact.
    """
    )
    name = "uniform"
    exactness = (
        "On integer data, bit-identical to scipy.ndimage.uniform_filter on the whole "
        "array, for every shape, chunking and boundary mode. On float data within "
        "about 1e-12 relative: scipy's running sum makes its last bits depend on "
        "where a line starts."
    )
    labels = LabelEffect.DROPS
    scipy_filter = "uniform_filter"
    size: int | tuple[int, ...] | None = size_field()
    origin: int | tuple[int, ...] = origin_field()


@dataclass(frozen=True)
class _Extremum(_WindowFilter):
    """Minimum or maximum: scipy takes a sequence of modes for a full box only."""

    size: int | tuple[int, ...] | None = size_field()
    footprint: str | tuple | None = footprint_field()
    origin: int | tuple[int, ...] = origin_field()
    labels = LabelEffect.KEEPS

    def check(self, ndim: int) -> None:
        super().check(ndim)
        selected = self.selected(ndim)
        if isinstance(self.mode, tuple) and selected is not None and not selected.all():
            raise ChunkwiseError(
                f"{self.name} takes one mode for all axes with a footprint that is "
                f"not a full box (as scipy does), got mode={self.mode!r}"
            )


@register
@dataclass(frozen=True)
class minimum(_Extremum):
    __doc__ = _doc(
        "Minimum over a window (grey erosion)",
        "minimum_filter",
        "",
        mode=_EXTREMUM_MODES,
        footprint=True,
    )
    name = "minimum"
    exactness = exact_as("scipy.ndimage.minimum_filter")
    scipy_filter = "minimum_filter"


@register
@dataclass(frozen=True)
class maximum(_Extremum):
    __doc__ = _doc(
        "Maximum over a window (grey dilation)",
        "maximum_filter",
        "",
        mode=_EXTREMUM_MODES,
        footprint=True,
    )
    name = "maximum"
    exactness = exact_as("scipy.ndimage.maximum_filter")
    scipy_filter = "maximum_filter"


@register
@dataclass(frozen=True)
class rank_filter(_WindowFilter):
    __doc__ = (
        _doc(
            "The value of a given rank in each window",
            "rank_filter",
            """rank : int
        Position in the sorted window: 0 is the minimum, -1 the maximum
        (negative ranks count from the top, as in scipy).""",
            mode=_ONE_MODE,
            footprint=True,
        )
        + """
    Examples
    --------
    >>> import numpy as np
    >>> rank_filter(-2, footprint="cross")(np.array([[3, 2, 5], [5, 8, 3]]))
    array([[3, 5, 5],
           [5, 8, 5]])
    """
    )
    name = "rank_filter"
    exactness = exact_as("scipy.ndimage.rank_filter")
    labels = LabelEffect.KEEPS
    scipy_filter = "rank_filter"
    mode_sequence = False
    rank: int
    size: int | tuple[int, ...] | None = size_field()
    footprint: str | tuple | None = footprint_field()
    origin: int | tuple[int, ...] = origin_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "rank", check_number("rank", self.rank, integer=True))

    def check(self, ndim: int) -> None:
        super().check(ndim)
        count = self.count(ndim)
        if not -count <= self.rank < count:
            raise ChunkwiseError(
                f"rank {self.rank} is outside the window of {count} voxels; it "
                f"must be within {-count}..{count - 1}"
            )

    def _arguments(self) -> tuple:
        return (self.rank,)


@register
@dataclass(frozen=True)
class percentile_filter(_WindowFilter):
    __doc__ = _doc(
        "The given percentile of each window",
        "percentile_filter",
        """percentile : float
        Percentile in -100..100; a negative one counts from the top (-20 is
        80). Like scipy, it picks the value of rank
        ``int(n * percentile / 100)`` in a window of ``n`` voxels (``n - 1`` for
        100), never an interpolation.""",
        mode=_ONE_MODE,
        footprint=True,
    )
    name = "percentile_filter"
    exactness = exact_as("scipy.ndimage.percentile_filter")
    labels = LabelEffect.KEEPS
    scipy_filter = "percentile_filter"
    mode_sequence = False
    percentile: float = param(low=-100.0, high=100.0, step=5.0)
    size: int | tuple[int, ...] | None = size_field()
    footprint: str | tuple | None = footprint_field()
    origin: int | tuple[int, ...] = origin_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        percentile = check_number("percentile", self.percentile, low=-100, high=100)
        object.__setattr__(self, "percentile", percentile)

    def _arguments(self) -> tuple:
        return (self.percentile,)
