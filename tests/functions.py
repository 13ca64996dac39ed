"""Functions for ``ops.custom`` in tests, importable as ``tests.functions``."""

from __future__ import annotations

import os
import time

import numpy as np


def slow_copy(block: np.ndarray) -> np.ndarray:
    """Return a copy after a pause, so that a run lasts long enough to be killed."""
    time.sleep(float(os.environ.get("CHUNKWISE_TEST_DELAY", "0.02")))
    return block.copy()


def slow_gaussian(block: np.ndarray) -> np.ndarray:
    """Gaussian sigma=1 after a pause (halo 4)."""
    from scipy import ndimage

    time.sleep(float(os.environ.get("CHUNKWISE_TEST_DELAY", "0.02")))
    return ndimage.gaussian_filter(block, 1.0)


def thread_niceness(block: np.ndarray) -> np.ndarray:
    """The CPU niceness of the thread computing the block, in every voxel."""
    import threading

    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return np.full(block.shape, nice, np.int16)
