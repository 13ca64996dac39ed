"""Every error a user of chunkwise can see, in one place.

``ChunkwiseError`` is bad input or bad usage, found before anything is written (CLI
exit code 2). ``BlockError`` is a failure while a run is under way (exit code 1).
``Cancelled`` ends a run that was asked to stop (exit code 130).
"""

from __future__ import annotations

__all__ = ["BlockError", "Cancelled", "ChunkwiseError"]


class ChunkwiseError(ValueError):
    """Bad input: a parameter, a path, a dtype or a shape that cannot be processed."""


class BlockError(RuntimeError):
    """A work block failed during a run; the message names the block and the cause."""


class Cancelled(RuntimeError):
    """The run was cancelled; blocks already written stay written and can be resumed."""
