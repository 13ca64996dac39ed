"""OME-Zarr (NGFF) image metadata: read a multiscale image, describe a new one.

NGFF 0.5 goes with Zarr v3 (under the group's ``ome`` attribute), 0.4 with Zarr v2
(``multiscales`` at the top of ``.zattrs``); both are read. A level's voxel
``j`` lies at world coordinate ``translation + j * scale`` (its centre), so a level
made of windows of ``k`` voxels has ``k`` times the scale and a translation moved by
``(k - 1) / 2`` of the finer voxel: the convention of ngff-zarr and napari.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._params import spatial_axes

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import zarr

__all__ = [
    "Level",
    "Multiscale",
    "check_placement",
    "placed",
    "read_multiscale",
    "version_for",
]

#: The NGFF version written with each Zarr format.
VERSIONS = {2: "0.4", 3: "0.5"}
#: Default axis names by number of dimensions (time, channel, then space).
_NAMES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}
_TYPES = {"t": "time", "c": "channel"}


def version_for(zarr_format: int) -> str:
    """The NGFF version chunkwise writes on Zarr format ``zarr_format``."""
    return VERSIONS[zarr_format]


@dataclass(frozen=True)
class Level:
    """One array of a pyramid: its path in the group and its place in the world."""

    path: str
    scale: tuple[float, ...]
    translation: tuple[float, ...]


@dataclass(frozen=True)
class Multiscale:
    """A multiscale image: its axes and levels, finest first."""

    axes: tuple[dict[str, Any], ...]
    levels: tuple[Level, ...]
    name: str | None = None
    #: The ``omero`` rendering hints (channels), if any.
    omero: dict[str, Any] | None = None
    #: Labels (``image-label`` metadata), to be reduced by mode, not mean.
    labels: bool = False
    #: The downscaling method recorded as the multiscale's ``type``.
    method: str | None = None
    version: str = "0.5"

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.axes)

    @property
    def spatial(self) -> tuple[int, ...]:
        """Indices of the space axes."""
        found = tuple(i for i, a in enumerate(self.axes) if a.get("type") == "space")
        return found or spatial_axes(self.ndim)

    def attributes(self, zarr_format: int) -> dict[str, Any]:
        """The group attributes that declare this image, for ``zarr_format``."""
        version = version_for(zarr_format)
        entry: dict[str, Any] = {}
        if version == "0.4":
            entry["version"] = version
        if self.name:
            entry["name"] = self.name
        entry["axes"] = [dict(a) for a in self.axes]
        entry["datasets"] = [
            {
                "path": level.path,
                "coordinateTransformations": [
                    {"type": "scale", "scale": list(level.scale)},
                    {"type": "translation", "translation": list(level.translation)},
                ],
            }
            for level in self.levels
        ]
        if self.method:
            entry["type"] = self.method
        image: dict[str, Any] = {"multiscales": [entry]}
        if self.omero:
            image["omero"] = self.omero
        if self.labels:
            image["image-label"] = {}
        if version == "0.4":
            return image
        return {"ome": {"version": version, **image}}


def default_axes(ndim: int) -> tuple[dict[str, Any], ...]:
    """Axes for an array without metadata: space last, then channel, then time."""
    return tuple(
        {"name": name, "type": _TYPES.get(name, "space")} for name in _NAMES[ndim]
    )


def plain(shape: Sequence[int]) -> Multiscale:
    """The image an array without metadata stands for: unit voxels at the origin."""
    ndim = len(shape)
    return Multiscale(default_axes(ndim), (Level("0", (1.0,) * ndim, (0.0,) * ndim),))


def _transforms(items: Any, ndim: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for item in items or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "scale" and len(item.get("scale", ())) == ndim:
            scale = [float(v) for v in item["scale"]]
        elif (
            item.get("type") == "translation"
            and len(item.get("translation", ())) == ndim
        ):
            translation = [float(v) for v in item["translation"]]
    return tuple(scale), tuple(translation)


def _axes(raw: Any, ndim: int) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or len(raw) != ndim:
        return default_axes(ndim)
    axes = []
    for axis in raw:
        if isinstance(axis, str):  # NGFF 0.3 wrote names only
            axes.append({"name": axis, "type": _TYPES.get(axis, "space")})
        elif isinstance(axis, dict) and isinstance(axis.get("name"), str):
            axes.append(
                {
                    k: axis[k]
                    for k in ("name", "type", "unit")
                    if axis.get(k) is not None
                }
            )
        else:
            return default_axes(ndim)
    return tuple(axes)


def image_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The NGFF part of a group's attributes (0.5 nests it under ``ome``)."""
    ome = attrs.get("ome")
    return dict(ome) if isinstance(ome, dict) else dict(attrs)


def read_multiscale(group: zarr.Group) -> Multiscale | None:
    """The first multiscale image declared by ``group``, or None if it declares none.

    Group-wide coordinate transformations are folded into each level's.
    """
    image = image_attributes(group.attrs.asdict())
    entries = image.get("multiscales")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    entry = entries[0]
    datasets = entry.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        return None
    paths = [d.get("path") for d in datasets if isinstance(d, dict)]
    if not paths or not all(isinstance(p, str) for p in paths):
        return None
    try:
        ndim = group[paths[0]].ndim
    except KeyError:
        return None
    outer_scale, outer_translation = _transforms(
        entry.get("coordinateTransformations"), ndim
    )
    levels = []
    for dataset in datasets:
        scale, translation = _transforms(dataset.get("coordinateTransformations"), ndim)
        levels.append(
            Level(
                dataset["path"],
                tuple(s * o for s, o in zip(scale, outer_scale, strict=True)),
                tuple(
                    t * o + u
                    for t, o, u in zip(
                        translation, outer_scale, outer_translation, strict=True
                    )
                ),
            )
        )
    omero = image.get("omero")
    version = image.get("version") or entry.get("version") or "0.4"
    return Multiscale(
        _axes(entry.get("axes"), ndim),
        tuple(levels),
        name=entry.get("name") if isinstance(entry.get("name"), str) else None,
        omero=omero if isinstance(omero, dict) else None,
        labels="image-label" in image,
        method=entry.get("type") if isinstance(entry.get("type"), str) else None,
        version=str(version),
    )


def level_shapes(
    shape: Sequence[int], spatial: Sequence[int], levels: int | None, smallest: int
) -> list[tuple[int, ...]]:
    """Shapes of a pyramid over ``shape``, halving the ``spatial`` axes per level.

    ``levels`` counts level 0; None adds levels until the largest spatial axis is at
    most ``smallest``.
    """
    shapes = [tuple(int(n) for n in shape)]
    while (levels is None and max(shapes[-1][a] for a in spatial) > smallest) or (
        levels is not None and len(shapes) < levels
    ):
        previous = shapes[-1]
        shapes.append(
            tuple(
                math.ceil(n / 2) if axis in spatial else n
                for axis, n in enumerate(previous)
            )
        )
    return shapes


def pyramid(
    base: Multiscale,
    count: int,
    *,
    method: str,
    name: str | None = None,
    keep_omero: bool = True,
) -> Multiscale:
    """The image ``base`` (level 0 only) extended to ``count`` levels of x2 windows.

    Levels are named ``0``, ``1``, ...; each halves the space axes of the one
    before, so its voxels are twice as large and centred on the windows they reduce.
    """
    first = base.levels[0]
    spatial = base.spatial
    levels = []
    for index in range(count):
        factor = [2.0**index if axis in spatial else 1.0 for axis in range(base.ndim)]
        levels.append(
            Level(
                str(index),
                tuple(s * f for s, f in zip(first.scale, factor, strict=True)),
                tuple(
                    t + s * (f - 1) / 2
                    for t, s, f in zip(
                        first.translation, first.scale, factor, strict=True
                    )
                ),
            )
        )
    return replace(
        base,
        levels=tuple(levels),
        name=name or base.name,
        omero=base.omero if keep_omero else None,
        method=method,
    )


def resampled(base: Multiscale, level: Level, voxel: Sequence[float]) -> Multiscale:
    """The one-level image of an operation's output over input ``level``.

    ``voxel`` is the size of an output voxel in input voxels, per axis: output voxel
    ``j`` is centred on input coordinate ``(j + 0.5) * voxel - 0.5``.
    """
    scale = tuple(s * v for s, v in zip(level.scale, voxel, strict=True))
    translation = tuple(
        t + s * (v - 1) / 2
        for t, s, v in zip(level.translation, level.scale, voxel, strict=True)
    )
    return replace(base, levels=(Level("0", scale, translation),))


def check_placement(
    name: str, values: object, ndim: int, *, positive: bool
) -> tuple[float, ...] | None:
    """``values`` as one finite number per axis (positive for a scale), or None."""
    if values is None:
        return None
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise ChunkwiseError(f"{name} must have one number per axis, got {values!r}")
    numbers_ = tuple(values)  # type: ignore[arg-type]
    if len(numbers_) != ndim:
        raise ChunkwiseError(
            f"{name} must have one number per axis of the input ({ndim}), "
            f"got {len(numbers_)}"
        )
    ok = all(
        isinstance(v, numbers.Real)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and (v > 0 or not positive)
        for v in numbers_
    )
    if not ok:
        kind = "positive" if positive else "finite"
        raise ChunkwiseError(f"{name} must be {kind} numbers, got {values!r}")
    return tuple(float(v) for v in numbers_)


def placed(
    image: Multiscale,
    scale: Sequence[float] | None,
    translation: Sequence[float] | None,
) -> Multiscale:
    """``image`` with its first level at ``scale`` and ``translation`` (None: kept)."""
    first = image.levels[0]
    level = Level(
        first.path,
        first.scale if scale is None else tuple(scale),
        first.translation if translation is None else tuple(translation),
    )
    return replace(image, levels=(level, *image.levels[1:]))
