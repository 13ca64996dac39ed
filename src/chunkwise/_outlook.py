"""Before a run: whether an output can be resumed by it, and how much it will write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chunkwise._api import check_n_jobs
from chunkwise._output import output_status
from chunkwise._plan import make_plan
from chunkwise._resources import stored_estimate
from chunkwise._source import open_source
from chunkwise._store import open_output
from chunkwise.errors import ChunkwiseError
from chunkwise.ops._catalogue import as_operation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chunkwise._store import Status
    from chunkwise.ops import Operation

__all__ = ["SizeEstimate", "estimate_output", "recorded_operation", "resumable"]


@dataclass(frozen=True)
class SizeEstimate:
    """How many bytes a run's output holds: decoded, and as stored on disk.

    ``stored`` assumes the output compresses as well as the input does (sampled
    from its chunks; see `chunkwise.process`'s space check, which uses the same
    figure).
    """

    uncompressed: int
    stored: int


def estimate_output(
    source: Any,
    op: Operation,
    *,
    chunks: Sequence[int] | None = None,
    n_jobs: int | None = None,
) -> SizeEstimate:
    """Estimate the size of ``op``'s output over ``source`` before running it.

    Parameters
    ----------
    source, op, chunks, n_jobs
        As for `chunkwise.process`.

    Returns
    -------
    SizeEstimate
        The output's decoded size (shape x itemsize) and its estimated size on disk.

    Examples
    --------
    >>> import numpy as np
    >>> from chunkwise import ops
    >>> estimate_output(np.zeros((64, 64, 64), np.uint16), ops.downsample(2))
    SizeEstimate(uncompressed=65536, stored=65536)
    """
    opened = open_source(source)
    plan = make_plan(
        opened, as_operation(op), chunks=chunks, n_jobs=check_n_jobs(n_jobs)
    )
    return SizeEstimate(plan.bytes_written, stored_estimate(plan, opened))


def resumable(out: Any, source: Any, op: Operation) -> Status | None:
    """The status of an unfinished run of ``op`` over ``source`` stored at ``out``.

    Parameters
    ----------
    out : str, os.PathLike, zarr store, zarr.Array or zarr.Group
        An output location.
    source : array-like or path
        The input, as given to `chunkwise.process`.
    op : Operation
        The operation.

    Returns
    -------
    Status or None
        The output's status (``cancelled``, ``interrupted``, ``partial``, ...) when
        ``out`` holds a chunkwise output of this input and operation that is not
        complete; None when there is no output there, it is complete, or it was made
        from another input or with another operation. A ``running`` status means
        that a live run holds it.

    Examples
    --------
    >>> import numpy as np, zarr, chunkwise
    >>> from chunkwise import ops
    >>> volume = np.zeros((32, 32, 32), np.uint8)
    >>> store = zarr.storage.MemoryStore()
    >>> run = chunkwise.iter_process(volume, ops.invert(), store)
    >>> run.cancel()
    >>> resumable(store, volume, ops.invert()) is not None
    True
    """
    status = output_status(out)
    if status is None or status.finished:
        return None
    try:
        recipe = open_output(out).provenance.get("recipe")
        described = open_source(source).describe()
    except ChunkwiseError:
        return None
    if not isinstance(recipe, dict):
        return None
    wanted = _json({"operation": as_operation(op).to_dict(), "input": described})
    made = {key: recipe.get(key) for key in wanted}
    return status if made == wanted else None


def recorded_operation(out: Any) -> Operation | None:
    """The operation that made the chunkwise output at ``out``, None if there is none.

    Examples
    --------
    >>> import numpy as np, zarr, chunkwise
    >>> from chunkwise import ops
    >>> out = chunkwise.process(np.zeros((8, 8), np.uint8), ops.invert())
    >>> recorded_operation(out)
    invert()
    """
    from chunkwise.ops import from_dict

    try:
        recipe = open_output(out).provenance.get("recipe")
        return from_dict(recipe["operation"])
    except (ChunkwiseError, KeyError, TypeError):
        return None


def _json(value: Any) -> Any:
    # The record went through JSON: tuples came back as lists.
    return json.loads(json.dumps(value))
