"""Open Zarr arrays and OME-Zarr images as napari layers, lazily.

Layers hold `LazyArray` views of the zarr arrays: napari reads only the chunks it
shows, through chunkwise's chunk reads and cache rather than zarr's per-chunk event
loop, and chunkwise processes the arrays themselves. Contrast limits are set from
the dtype or a few stored chunks, so that napari does not scan a plane for them.
A plain array takes its name and place in the world from the attributes that
`write_zarr` stores; an OME-Zarr image (NGFF 0.4, or 0.5 under ``attrs["ome"]``)
from its multiscales metadata. The metadata is read as plain attributes: the few
fields needed do not justify a validating model with its own pins.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pint
import zarr
from napari.utils.notifications import show_error, show_warning

from chunkwise import ops
from chunkwise._napari._lazy import READ_CACHE_BYTES, LazyArray
from chunkwise._napari._writer import LAYER_ATTRIBUTE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["get_reader", "read_zarr"]

LayerData = tuple[Any, ...]


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """The reader for a ``.zarr`` path (napari reader hook), or None.

    Parameters
    ----------
    path : str or list of str
        What napari was asked to open.

    Returns
    -------
    callable or None
        `read_zarr` for one path ending in ``.zarr``; None for anything else.

    Examples
    --------
    >>> get_reader("volume.zarr") is read_zarr, get_reader("volume.tif")
    (True, None)
    """
    if isinstance(path, str) and path.rstrip("/\\").endswith(".zarr"):
        return read_zarr
    return None


def read_zarr(path: str) -> list[LayerData]:
    """Open a Zarr array or OME-Zarr image as one layer, without loading it.

    Parameters
    ----------
    path : str
        A ``.zarr`` directory or URL.

    Returns
    -------
    list of tuple
        One ``(data, meta, layer_type)``: `LazyArray` views of zarr arrays (a list
        of levels for a multiscale image), with name, scale, translate, axis labels,
        units and, for images, contrast limits.
        If ``path`` cannot be read, an error notification says why and napari's
        "nothing to add" value ``[(None,)]`` is returned.
    """
    try:
        return [_open(path)]
    except Exception as error:  # an unreadable file is a message, not a traceback
        show_error(f"Cannot open {path}: {_reason(error)}")
        return [(None,)]


def _reason(error: Exception) -> str:
    if isinstance(error, zarr.errors.NodeNotFoundError):
        return "no Zarr array or group there (no zarr.json, .zarray or .zgroup)"
    if isinstance(error, json.JSONDecodeError):
        return f"its Zarr metadata is not valid JSON ({error})"
    text = str(error).strip()
    if isinstance(error, ValueError | FileNotFoundError) and text:
        return text.splitlines()[0]
    return f"{type(error).__name__}: {text}".splitlines()[0]


def _open(path: str) -> LayerData:
    name = PurePosixPath(path.replace("\\", "/").rstrip("/")).stem.removesuffix(".ome")
    if "://" not in path:
        local = Path(path).expanduser()
        if not local.exists():
            raise FileNotFoundError("no such file or directory")
        if not local.is_dir():
            raise ValueError("not a directory; a Zarr store is a directory")
        path = str(local)
    node = zarr.open(store=path, mode="r")
    if isinstance(node, zarr.Group):
        return _image(node, name, path)
    return _array(node, name, path)


def _array(array: zarr.Array, name: str, path: str) -> LayerData:
    """A plain array: placed by our attributes, labels if it says so or by recipe."""
    record = dict(array.attrs.get(LAYER_ATTRIBUTE, {}))
    provenance = _provenance(array, path)
    kind = record.get("layer_type") or (
        "labels" if _holds_labels(provenance) else "image"
    )
    # An RGB(A) result of the widget: placed on its layer's axes, colour aside.
    scale = record.get("scale")
    rgb = (
        kind == "image"
        and array.shape[-1] in (3, 4)
        and isinstance(scale, list)
        and len(scale) == array.ndim - 1
    )
    meta = _meta(record, array.ndim - rgb, name)
    if rgb:
        meta["rgb"] = True
    data = LazyArray(array)
    kind = _checked_kind(kind, array.dtype, meta)
    if kind == "image":
        _set_limits(meta, data)
    return data, meta, kind


def _provenance(node: zarr.Array | zarr.Group, path: str) -> dict[str, Any]:
    """The chunkwise record of ``node``; warns if it is an unfinished output."""
    record = node.attrs.get("chunkwise", {})
    provenance = dict(record) if isinstance(record, dict) else {}
    status = provenance.get("status", "complete")
    if status != "complete":
        show_warning(
            f"{path} is an unfinished chunkwise output ({status}); parts not "
            "computed yet show as 0. Resume the run to finish it."
        )
    return provenance


def _image(group: zarr.Group, name: str, path: str = "") -> LayerData:
    """An OME-Zarr multiscale image: every level, placed by level 0's transforms."""
    attrs = group.attrs.asdict()
    ome = attrs.get("ome", attrs)
    if "bioformats2raw.layout" in ome and "0" in group:
        return _image(group["0"], name, path)
    multiscales = ome.get("multiscales")
    if not multiscales:
        arrays = ", ".join(sorted(group.array_keys())) or "none"
        raise ValueError(
            "a Zarr group without OME-Zarr multiscales metadata; open one of its "
            f"arrays instead (arrays: {arrays})"
        )
    image = multiscales[0]
    levels = [group[dataset["path"]] for dataset in image["datasets"]]
    if not all(isinstance(level, zarr.Array) for level in levels):
        raise ValueError("an OME-Zarr dataset path names a group, not an array")
    ndim = levels[0].ndim
    scale, translate = _world(
        image["datasets"][0].get("coordinateTransformations", [])
        + image.get("coordinateTransformations", []),
        ndim,
    )
    axes = image.get("axes", [])
    record: dict[str, Any] = {"scale": scale, "translate": translate}
    if len(axes) == ndim:
        record["axis_labels"] = [a["name"] if isinstance(a, dict) else a for a in axes]
        record["units"] = _units(axes)
    meta = _meta(record, ndim, name)
    meta["multiscale"] = len(levels) > 1
    provenance = _provenance(group, path or name)
    labels = "image-label" in ome or _holds_labels(provenance)
    kind = _checked_kind("labels" if labels else "image", levels[0].dtype, meta)
    # Level k shows 1/4**k of level 0's pixels: its cache gets as much of the
    # budget, all levels together under 4/3 of it. Level 0 is opened last, so that
    # the preview, which reads level 0, finds its Source still open and shares it.
    data = [
        LazyArray(level, cache_bytes=READ_CACHE_BYTES // 4**k)
        for k, level in reversed(list(enumerate(levels)))
    ][::-1]
    if kind == "image":
        _set_limits(meta, data[-1])
    return (data if len(data) > 1 else data[0]), meta, kind


def _world(transforms: Sequence[dict[str, Any]], ndim: int) -> tuple[list, list]:
    """Scale and translate of a sequence of NGFF scale/translation transforms."""
    scale, translate = np.ones(ndim), np.zeros(ndim)
    for transform in transforms:
        kind = transform.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation") or kind not in transform:
            raise ValueError(
                f"unsupported OME-Zarr coordinate transformation {transform!r}"
            )
        values = np.asarray(transform[kind], dtype=float)
        if values.shape != (ndim,):
            raise ValueError(f"OME-Zarr {kind} {values.tolist()} is not {ndim} values")
        if kind == "scale":
            scale, translate = scale * values, translate * values
        else:
            translate = translate + values
    return scale.tolist(), translate.tolist()


def _units(axes: Sequence[Any]) -> list[str | None] | None:
    """The axes' units if napari understands them all (None means pixel)."""
    units = [a.get("unit") if isinstance(a, dict) else None for a in axes]
    registry = pint.get_application_registry()
    try:
        for unit in units:
            if unit is not None:
                registry.parse_expression(unit)
    except pint.errors.UndefinedUnitError:
        return None
    return units if any(units) else None


def _meta(record: dict[str, Any], ndim: int, name: str) -> dict[str, Any]:
    """Layer keyword arguments from a record, checked so napari cannot refuse them."""
    meta: dict[str, Any] = {"name": record.get("name") or name}
    for key in ("scale", "translate", "axis_labels", "units"):
        values = record.get(key)
        if values is None:
            continue
        if len(values) != ndim:
            raise ValueError(f"its {key} {values} does not have {ndim} values")
        meta[key] = tuple(values)
    if record.get("contrast_limits") is not None:
        meta["contrast_limits"] = tuple(record["contrast_limits"])
    return meta


def _set_limits(meta: dict[str, Any], data: LazyArray) -> None:
    """Set contrast limits, unless recorded, without scanning the array.

    The dtype's range up to 8 bits, else the range of a few stored chunks. Left
    unset, napari scans the first plane it shows: all of a 16384**2 plane.
    """
    dtype = np.dtype(data.dtype)
    if "contrast_limits" in meta or dtype.kind not in "biuf":
        return
    integer = dtype.kind in "iu"
    full = (
        (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max))
        if integer
        else (0.0, 1.0)
    )
    if dtype.kind == "b" or (integer and dtype.itemsize == 1):
        meta["contrast_limits"] = full
        return
    values = data.sample()
    if values is not None and dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values is None or values.size == 0:
        meta["contrast_limits"] = full
        return
    low, high = float(values.min()), float(values.max())
    if low == high:  # nothing to go by: as napari does for a constant image
        low, high = full if integer else (min(low, 0.0), max(high, 1.0))
    meta["contrast_limits"] = (low, high)


def _checked_kind(kind: str, dtype: Any, meta: dict[str, Any]) -> str:
    """Labels need integers; anything else is shown as an image."""
    if kind == "labels" and np.dtype(dtype).kind in "biu":
        meta.pop("contrast_limits", None)
        return "labels"
    return "image"


def _holds_labels(provenance: dict[str, Any]) -> bool:
    """Whether a chunkwise output holds labels, as its run recorded.

    Outputs of older versions record only the recipe: labels if it makes a mask
    (a threshold, then steps that keep labels), since the input's kind is unknown.
    Custom steps are not rebuilt, since that imports the module they name.
    """
    recorded = provenance.get("labels")
    if isinstance(recorded, bool):
        return recorded
    operation = provenance.get("operation")
    if not isinstance(operation, dict):
        return False
    steps = (
        operation.get("steps", []) if operation.get("op") == "chain" else [operation]
    )
    labels = False
    try:
        for step in steps:
            custom = step.get("op") == "custom"
            labels = not custom and ops.from_dict(step).labels_from(labels)
    except (ValueError, TypeError, KeyError, AttributeError):
        # A recipe from another version of chunkwise: guess no more than "image".
        return False
    return labels
