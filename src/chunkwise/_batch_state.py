"""Whether a batch's output is already what its recipe makes from its input.

The expected record is made as a resumed run makes it (`chunkwise._run`): the
settings the recipe leaves out are the output's own. Anything in doubt answers no,
and the batch then resumes, which checks everything again and computes only what
is missing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chunkwise._checks import output_format
from chunkwise._fingerprint import changes, list_input
from chunkwise._output import Found, effective_status, inspect_output
from chunkwise._plan import make_plan
from chunkwise._prepare import make_recipe
from chunkwise._remote import check_storage_options
from chunkwise._selection import wanted_blocks
from chunkwise._source import open_source, with_axes
from chunkwise._store import Ledger, Status, open_output, output_store
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._axes import fit_axes

if TYPE_CHECKING:
    from chunkwise._options import RunOptions
    from chunkwise._recipe import Recipe


def output_found(out: str, options: RunOptions) -> Found:
    """What the output location holds (nothing, a chunkwise output, other)."""
    storage = check_storage_options(options.storage_options, out)
    return inspect_output(output_store(out, storage)).found


def made_by(recipe: Recipe, source: str, out: str, options: RunOptions) -> bool:
    """Whether ``out`` is complete and made by ``recipe`` from ``source`` as it is."""
    try:
        return _made_by(recipe, source, out, options)
    except (ChunkwiseError, KeyError, TypeError, ValueError, OSError):
        return False


def _made_by(recipe: Recipe, source: str, out: str, options: RunOptions) -> bool:
    storage = check_storage_options(options.storage_options, source, out)
    output = open_output(output_store(out, storage))
    record = output.provenance
    status = effective_status(record)
    if status not in (Status.COMPLETE.value, Status.PARTIAL.value):
        return False
    stored = record["recipe"]
    layout = stored["output"]
    opened = open_source(
        source,
        missing=options.missing,
        timeout=options.timeout,
        level=options.level,
        storage_options=storage,
    )
    opened = with_axes(opened, options.axes)
    op = fit_axes(recipe.operation, opened.spatial, len(opened.shape))
    chunks, shards = options.chunks, options.shards
    if chunks is None and shards is None:
        chunks, shards = layout["chunks"], layout["shards"]
    plan = make_plan(
        opened, op, chunks=chunks, shards=shards, block=layout["block_shape"], n_jobs=1
    )
    levels = options.levels or layout.get("levels")
    image = output_format(options.format, out, options.levels) == "ome-zarr"
    expected = make_recipe(
        opened,
        plan,
        options.zarr_format or layout["zarr_format"],
        options.codec or layout["codec"],
        levels if image else None,
    )
    if _json(expected) != _json(stored):
        return False
    before = record.get("input_fingerprint")
    listing = list_input(opened.array)
    if (
        isinstance(before, dict)
        and listing is not None
        and changes(before, listing.summary())
    ):
        return False
    if status == Status.COMPLETE.value:
        return True
    # A region's run ends partial: done when every block over the region is.
    wanted = wanted_blocks(plan, opened, options.region)
    done = Ledger.of(output.base).done(len(plan))
    return wanted is not None and bool(done[wanted].all())


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))
