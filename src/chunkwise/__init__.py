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

__version__ = "0.1.0"

from chunkwise import ops
from chunkwise._api import compute_region, plan
from chunkwise._geometry import Box
from chunkwise._plan import Block, Plan
from chunkwise._run import BlockDone, CancelToken, Run, iter_process, process
from chunkwise.errors import BlockError, Cancelled, ChunkwiseError
from chunkwise.ops import chain

__all__ = [
    "Block",
    "BlockDone",
    "BlockError",
    "Box",
    "CancelToken",
    "Cancelled",
    "ChunkwiseError",
    "Plan",
    "Run",
    "__version__",
    "chain",
    "compute_region",
    "iter_process",
    "ops",
    "plan",
    "process",
]
