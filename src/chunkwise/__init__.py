"""Chunkwise: exact, parallel, resumable chunk-by-chunk processing of Zarr volumes.

Build an operation with `chunkwise.ops`, then run it over a volume that does not fit
in memory with `process` (or `iter_process` to watch each block finish). The result
equals the operation applied to the whole array in memory.

Examples
--------
>>> import numpy as np
>>> import chunkwise
>>> from chunkwise import ops
>>> volume = np.random.default_rng(0).integers(0, 255, (64, 64, 64), dtype=np.uint8)
>>> op = chunkwise.chain(ops.gaussian(1.5), ops.downsample(2))
>>> chunkwise.process(volume, op, chunks=(16, 16, 16)).shape
(32, 32, 32)
"""

# The public names load on first use (Scientific Python SPEC 1): importing the
# package, as the `chunkwise` command does first, costs nothing, so a Ctrl-C while
# zarr, numpy and scipy load lands in the command's own handling, not in a traceback.

import importlib

__version__ = "0.1.0"

#: Where each public name lives; ``ops`` is the subpackage itself.
_SOURCES = {
    "BatchResult": "chunkwise._batch",
    "Block": "chunkwise._plan",
    "BlockDone": "chunkwise._run",
    "BlockError": "chunkwise.errors",
    "Box": "chunkwise._geometry",
    "CancelToken": "chunkwise._run",
    "Cancelled": "chunkwise.errors",
    "ChunkwiseError": "chunkwise.errors",
    "Plan": "chunkwise._plan",
    "Recipe": "chunkwise._recipe",
    "RegionTile": "chunkwise._region",
    "Run": "chunkwise._run",
    "RunOptions": "chunkwise._options",
    "SizeEstimate": "chunkwise._outlook",
    "Status": "chunkwise._store",
    "batch": "chunkwise._batch",
    "chain": "chunkwise.ops",
    "compute_region": "chunkwise._region",
    "estimate_output": "chunkwise._outlook",
    "iter_batch": "chunkwise._batch",
    "iter_process": "chunkwise._run",
    "iter_region": "chunkwise._region",
    "ops": "chunkwise.ops",
    "output_status": "chunkwise._output",
    "plan": "chunkwise._run",
    "process": "chunkwise._run",
    "recorded_operation": "chunkwise._outlook",
    "resumable": "chunkwise._outlook",
    "summary_table": "chunkwise._batch",
    "to_command_line": "chunkwise._recipe_text",
    "to_python": "chunkwise._recipe_text",
    "verify": "chunkwise._verify",
}

__all__ = [
    "BatchResult",
    "Block",
    "BlockDone",
    "BlockError",
    "Box",
    "CancelToken",
    "Cancelled",
    "ChunkwiseError",
    "Plan",
    "Recipe",
    "RegionTile",
    "Run",
    "RunOptions",
    "SizeEstimate",
    "Status",
    "__version__",
    "batch",
    "chain",
    "compute_region",
    "estimate_output",
    "iter_batch",
    "iter_process",
    "iter_region",
    "ops",
    "output_status",
    "plan",
    "process",
    "recorded_operation",
    "resumable",
    "summary_table",
    "to_command_line",
    "to_python",
    "verify",
]


def __getattr__(name: str) -> object:
    try:
        source = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'chunkwise' has no attribute {name!r}") from None
    module = importlib.import_module(source)
    value = module if name == "ops" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
