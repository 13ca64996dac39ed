"""Save an Image or Labels layer as a Zarr array, block by block through the engine.

The engine copies the layer with an identity `astype`, one block at a time, so a
lazy (zarr, dask) layer is never loaded whole. The copy is written beside the target
and moved into place only when complete: a failed save leaves an earlier file as it
was, and a layer that reads lazily from the target is fully read before the target
is replaced.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

import chunkwise
from chunkwise import ops

__all__ = ["LAYER_ATTRIBUTE", "layer_record", "write_zarr"]

#: The array attribute that records a layer's kind, name and place in the world.
LAYER_ATTRIBUTE = "napari"


def _layer_type(meta: dict[str, Any]) -> str:
    """``"labels"`` or ``"image"``, from a layer's napari metadata.

    The writer gets no layer type, only the metadata: napari gives Labels layers
    ``features`` and Image layers ``contrast_limits``.
    """
    labels = "features" in meta and "contrast_limits" not in meta
    return "labels" if labels else "image"


def layer_record(meta: dict[str, Any], kind: str) -> dict[str, Any]:
    """A layer's kind, name and place in the world, as JSON for array attributes.

    Parameters
    ----------
    meta : dict
        The layer's napari metadata (``layer.as_layer_data_tuple()[1]``).
    kind : {"image", "labels"}
        The layer type.

    Returns
    -------
    dict
        ``layer_type``, and those of ``name``, ``scale``, ``translate``,
        ``axis_labels``, ``units`` and (images) ``contrast_limits`` that are set.

    Examples
    --------
    >>> layer_record({"name": "ct", "scale": (2.0, 1.0, 1.0)}, "image")
    {'layer_type': 'image', 'name': 'ct', 'scale': [2.0, 1.0, 1.0]}
    """
    record: dict[str, Any] = {"layer_type": kind}
    if meta.get("name") is not None:
        record["name"] = str(meta["name"])
    for key in ("scale", "translate"):
        if meta.get(key) is not None:
            record[key] = [float(v) for v in meta[key]]
    for key in ("axis_labels", "units"):
        if meta.get(key) is not None:
            record[key] = [str(v) for v in meta[key]]
    if kind == "image" and meta.get("contrast_limits") is not None:
        record["contrast_limits"] = [float(v) for v in meta["contrast_limits"]]
    return record


def write_zarr(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one Image or Labels layer as a Zarr array (napari writer).

    A path ending in ``.ome.zarr`` is written as an OME-Zarr image (with a pyramid)
    whose NGFF metadata records the layer's scale and translation, so that any
    OME-Zarr reader places it where the layer lies.

    Parameters
    ----------
    path : str
        The ``.zarr`` directory to write. An existing Zarr array (or, for
        ``.ome.zarr``, image) there is replaced once the new one is complete;
        anything else there is refused.
    data : array-like or sequence of array-like
        The layer data: numpy, zarr, dask or any lazy array; of a multiscale
        layer, level 0 is saved.
    meta : dict
        The layer's metadata; name, scale, translate, axis labels, units and the
        layer type are stored in the ``napari`` attribute for the reader.

    Returns
    -------
    list of str
        The path written.

    Raises
    ------
    chunkwise.ChunkwiseError
        If ``path`` holds something other than a Zarr array, or the data cannot be
        saved (an unsupported dtype, say).
    """
    source = data[0] if meta.get("multiscale") else data
    target = Path(path).expanduser().absolute()
    ome = target.name.endswith(".ome.zarr")
    _check_replaceable(target, ome=ome)
    token = uuid.uuid4().hex[:8]
    scratch = target.with_name(f".{target.name}.{token}.partial")
    place: dict[str, Any] = {}
    if ome:
        place = {"format": "ome-zarr"}
        for key, name in (("scale", "scale"), ("translate", "translation")):
            if meta.get(key) is not None:
                place[name] = tuple(float(v) for v in meta[key])
    try:
        output = chunkwise.process(
            source, ops.astype(np.dtype(source.dtype).name), scratch, **place
        )
        record = layer_record(meta, _layer_type(meta))
        output.update_attributes({LAYER_ATTRIBUTE: record})
        _move_into_place(scratch, target, token)
    finally:
        # Nothing is left here after a successful move; after a failure, a part.
        shutil.rmtree(scratch, ignore_errors=True)
    return [str(target)]


def _check_replaceable(target: Path, *, ome: bool = False) -> None:
    """Refuse to replace anything but a Zarr array (or an empty directory).

    With ``ome``, a Zarr group (an OME-Zarr image) may be replaced too.
    """
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    try:
        node = zarr.open(store=LocalStore(target, read_only=True), mode="r")
    except Exception:  # whatever it is, it is not a Zarr array
        node = None
    kinds = (zarr.Array, zarr.Group) if ome else (zarr.Array,)
    if not isinstance(node, kinds):
        raise chunkwise.ChunkwiseError(
            f"{target} exists and is not a Zarr array; refusing to replace it "
            "(choose a new name)"
        )


def _move_into_place(scratch: Path, target: Path, token: str) -> None:
    if not target.exists():
        scratch.rename(target)
        return
    old = target.with_name(f".{target.name}.{token}.old")
    target.rename(old)
    try:
        scratch.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old)
