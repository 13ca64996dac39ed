"""Functions for ``ops.custom`` in run tests that fail on purpose.

Importable as ``tests.faulty`` when the repository root is on ``sys.path``.
"""

from __future__ import annotations

import numpy as np


def fail_on_negative(block: np.ndarray) -> np.ndarray:
    """Return a copy, or raise if the block holds a negative voxel."""
    if (block < 0).any():
        raise ValueError("a negative voxel was planted here")
    return block.copy()
