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


def uniform_wrap(block: np.ndarray) -> np.ndarray:
    """scipy's 3-wide box mean with wrap boundaries on every axis (halo 1)."""
    from scipy import ndimage

    return ndimage.uniform_filter(block, 3, mode="wrap")


def laplace_wrap(block: np.ndarray) -> np.ndarray:
    """scipy's Laplace filter with wrap boundaries on every axis (halo 1)."""
    from scipy import ndimage

    return ndimage.laplace(block, mode="wrap")


def maximum_wrap_first_axis(block: np.ndarray) -> np.ndarray:
    """A 5-wide maximum that wraps along axis 0 and mirrors elsewhere (halo 2)."""
    from scipy import ndimage

    modes = ("wrap",) + ("mirror",) * (block.ndim - 1)
    return ndimage.maximum_filter(block, 5, mode=modes)


def _sum_of_squares(values: np.ndarray) -> float:
    return float((np.asarray(values) ** 2).sum())


_DISC = (np.mgrid[-2:3, -2:3] ** 2).sum(axis=0) < 2.5**2
#: dask-image's ``test_generic_filter_compare`` grid: (size, footprint, origin) of a
#: sum of squares over a 2D window. ``generic_<i>_<mode>`` below is case ``i`` as a
#: function for ``ops.custom``, with scipy's boundary ``mode``.
GENERIC_GRID = [
    (2, None, 0),
    (None, np.ones((2, 3)), 0),
    (None, np.ones((2, 3)), (0, 1)),
    (None, np.ones((2, 3)), (0, -1)),
    (None, _DISC, 0),
    (None, _DISC, (1, 2)),
    (None, _DISC, (-1, -2)),
    (5, None, 0),
    (7, None, 0),
    (8, None, 0),
    (10, None, 0),
    (5, None, 2),
    (5, None, -2),
]


def _generic(size, footprint, origin, mode):
    def sum_of_squares(block: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        return ndimage.generic_filter(
            block, _sum_of_squares, size, footprint, mode=mode, origin=origin
        )

    return sum_of_squares


for _index, _case in enumerate(GENERIC_GRID):
    for _mode in ("reflect", "wrap"):
        globals()[f"generic_{_index}_{_mode}"] = _generic(*_case, _mode)


def fails_in_corner(block: np.ndarray) -> np.ndarray:
    """Fail on the block holding the volume's last voxel, recording each call.

    The volume is marked there with the value 255; each failing call leaves a file
    in ``$CHUNKWISE_TEST_CALLS`` (so a test can count retries).
    """
    if block.size and block.flat[-1] == 255:
        folder = os.environ.get("CHUNKWISE_TEST_CALLS")
        if folder:
            with open(os.path.join(folder, f"{os.getpid()}-{time.time_ns()}"), "w"):
                pass
        raise ValueError("the corner voxel is 255")
    return block.copy()
