"""The checks a run makes before it writes anything: each refusal is one line."""

from __future__ import annotations

import os
from typing import Any

import zarr

from chunkwise._fingerprint import changes
from chunkwise._output import Existing, Found, local_root
from chunkwise._source import Source
from chunkwise._store import Output, provenance
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
