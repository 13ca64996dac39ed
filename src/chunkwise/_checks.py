"""The checks a run makes before it writes anything: each refusal is one line."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Iterator
from typing import Any

import zarr

from chunkwise._fingerprint import changes
from chunkwise._ngff import check_placement
from chunkwise._output import Existing, Found, local_root
from chunkwise._source import Source
from chunkwise._store import Output, parse_codec, provenance
from chunkwise.errors import ChunkwiseError

#: Output formats: one Zarr array, or an OME-Zarr image with a pyramid.
FORMATS = ("zarr", "ome-zarr")


def check_flags(codec: Any, *, overwrite: bool, resume: bool, force: bool) -> None:
    if codec is not None and not isinstance(codec, str):
        raise ChunkwiseError(f"codec must be text such as 'zstd:3', got {codec!r}")
    if overwrite and resume:
        raise ChunkwiseError(
            "overwrite and resume exclude each other: overwrite starts again, "
            "resume finishes the existing output"
        )
    if force and not overwrite:
        raise ChunkwiseError("force only applies with overwrite")


def check_layout(
    *,
    shapes: dict[str, Any],
    zarr_format: Any,
    codec: Any,
    level: Any,
    axes: Any,
    region: Any,
    placement: dict[str, Any],
) -> None:
    """Check what can be checked of a run's settings before the input is opened.

    The rest (one value per axis of the input, a region inside it) is checked
    once the input's shape is known.
    """
    for name, value in shapes.items():
        check_shape(name, value)
    if zarr_format is not None and (
        isinstance(zarr_format, bool) or zarr_format not in (2, 3)
    ):
        raise ChunkwiseError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if codec is not None:
        parse_codec(codec, 3)
    if level is not None and (
        isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 0
    ):
        raise ChunkwiseError(f"level must be a whole number >= 0, got {level!r}")
    if axes is not None:
        from chunkwise.ops._axes import check_axes

        check_axes(axes, len(axes) if isinstance(axes, str) else 0)
    if isinstance(region, str):
        from chunkwise._selection import _parse_region

        _parse_region(region, len(region.split(",")))
    for name, values in placement.items():
        sized = hasattr(values, "__len__") and not isinstance(values, str | bytes)
        check_placement(
            name, values, len(values) if sized else 0, positive=name == "scale"
        )


def check_shape(name: str, value: Any) -> None:
    """Refuse chunks, shards or a block that are not positive whole numbers."""
    if value is None or isinstance(value, Iterator):
        return  # an iterator is read once, by the plan
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ChunkwiseError(
            f"{name} must be a sequence of whole numbers such as (64, 64, 64), "
            f"got {value!r}"
        )
    values = tuple(value)
    if not values or not all(_is_count(v) for v in values):
        raise ChunkwiseError(f"{name} must be positive whole numbers, got {value!r}")


def _is_count(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) and int(value) == value and value >= 1


def check_existing(
    found: Existing, *, overwrite: bool, resume: bool, force: bool
) -> None:
    """Refuse, before planning, what an existing output rules out."""
    kind = found.found
    if kind in (Found.NOTHING, Found.EMPTY):
        return
    if kind is Found.OTHER:
        detail = f" ({found.detail})" if found.detail else ""
        raise ChunkwiseError(
            f"the output location holds {kind.value}{detail}; refusing to replace it"
        )
    if resume and kind is not Found.CHUNKWISE:
        detail = f" ({found.detail})" if found.detail else ""
        raise ChunkwiseError(
            f"cannot resume: the output holds {kind.value}{detail}; "
            + (
                "use overwrite to start again"
                if kind is Found.BROKEN
                else "refusing to touch it"
            )
        )
    if kind is Found.FOREIGN and overwrite and not force:
        raise ChunkwiseError(
            f"the output holds {kind.value}; refusing to replace it (pass force "
            "(--force) with overwrite to replace it anyway)"
        )
    if not (overwrite or resume):
        hint = (
            "pass overwrite (--overwrite) to replace it or resume (--resume) to "
            "finish it"
            if kind is not Found.FOREIGN
            else "choose another output"
        )
        raise ChunkwiseError(f"the output already exists ({kind.value}); {hint}")


def check_not_input(source: Source, found: Existing) -> None:
    """Refuse an output whose array is the input seen by another name (a URL)."""
    if found.array is None or not isinstance(source.array, zarr.Array):
        return
    mine, theirs = provenance(found.array), provenance(source.array)
    # Every run (and sample) records its own id: two arrays with one are one array.
    if mine.get("run_id") and mine.get("run_id") == theirs.get("run_id"):
        raise ChunkwiseError(
            "the output holds the same array as the input (identical provenance, "
            f"run {mine.get('run_id', '?')}); refusing to replace the input"
        )


def check_recipe(found: Existing, recipe: dict[str, Any]) -> None:
    stored = provenance(found.array).get("recipe")
    if stored != recipe:
        differs = sorted(
            k
            for k in recipe
            if not isinstance(stored, dict) or stored.get(k) != recipe[k]
        )
        raise ChunkwiseError(
            "cannot resume: the existing output was made with a different "
            f"{' and '.join(differs or ['recipe'])}; use overwrite to start again"
        )


def check_fingerprint(output: Output, fingerprint: dict[str, Any]) -> None:
    before = output.provenance.get("input_fingerprint")
    change = changes(before, fingerprint) if isinstance(before, dict) else None
    if change:
        raise ChunkwiseError(
            "cannot resume: the input changed since this output was started "
            f"({change}); use overwrite to start again"
        )


def output_format(format: str | None, out: Any, levels: int | None) -> str:
    """The output's format: as given, else ``ome-zarr`` for a ``.ome.zarr`` name.

    ``format`` and ``levels`` are checked values (`chunkwise.RunOptions`).
    """
    if format is None:
        if isinstance(out, str | os.PathLike):
            name = os.fspath(out)
        else:
            root = local_root(out)
            name = "" if root is None else str(root)
        format = "ome-zarr" if name.rstrip("/").endswith(".ome.zarr") else "zarr"
    if levels is not None and format != "ome-zarr":
        raise ChunkwiseError("levels needs format='ome-zarr' (--format ome-zarr)")
    return format
