"""One example of every registered operation, with its whole-array reference.

The references are numpy and scipy.ndimage called here, never chunkwise itself. The
keys must be the registry's names (`unreferenced` is empty): an operation that
registers itself without a reference here fails tests/ops/test_catalogue.py.
Test modules import this as ``from catalogue import ...``, as they do conftest.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from chunkwise import ops
from conftest import reference_downsample

KERNEL = [[[1, 2, 1], [0, 1, 3]]]


def _rescale(x):
    values = np.clip(x.astype(np.float64), 0, 1300)
    return np.rint(values * (255 / 1300)).astype(np.uint8)


def _gamma(x):
    values = np.power(x.astype(np.float64) / 65535, 0.5) * 65535.0
    return np.clip(np.rint(values), 0, 65535).astype(np.uint16)


def _repeat(x, k):
    for axis in range(x.ndim):
        x = np.repeat(x, k, axis=axis)
    return x


def _difference_of_gaussians(x):
    return ndimage.gaussian_filter(x, 1.0) - ndimage.gaussian_filter(x, 2.0)


def _unsharp(x):
    return x + np.float32(1.5) * (x - ndimage.gaussian_filter(x, 1.0))


#: name -> (an operation, its reference on the whole array, the input's dtype).
REFERENCES = {
    "copy": (ops.copy(), np.copy, "uint16"),
    "clip": (ops.clip(5, 900), lambda x: np.clip(x, 5, 900), "uint16"),
    "threshold": (
        ops.threshold(700),
        lambda x: (x > 700).astype(np.uint8),
        "uint16",
    ),
    "rescale": (ops.rescale((0, 1300), dtype="uint8"), _rescale, "uint16"),
    "invert": (ops.invert(), np.invert, "uint16"),
    "astype": (ops.astype("int32"), lambda x: x.astype(np.int32), "uint16"),
    "gamma": (ops.gamma(0.5), _gamma, "uint16"),
    "downsample": (
        ops.downsample(2, "max"),
        lambda x: reference_downsample(x, 2, "max"),
        "uint16",
    ),
    "upsample": (ops.upsample(2), lambda x: _repeat(x, 2), "uint16"),
    "gaussian": (
        ops.gaussian(1.5),
        lambda x: ndimage.gaussian_filter(x, 1.5),
        "float32",
    ),
    "median": (ops.median(3), lambda x: ndimage.median_filter(x, 3), "uint16"),
    "uniform": (ops.uniform(3), lambda x: ndimage.uniform_filter(x, 3), "uint16"),
    "minimum": (ops.minimum(3), lambda x: ndimage.minimum_filter(x, 3), "uint16"),
    "maximum": (ops.maximum(3), lambda x: ndimage.maximum_filter(x, 3), "uint16"),
    "rank_filter": (
        ops.rank_filter(2),
        lambda x: ndimage.rank_filter(x, 2, size=3),
        "uint16",
    ),
    "percentile_filter": (
        ops.percentile_filter(30),
        lambda x: ndimage.percentile_filter(x, 30, size=3),
        "uint16",
    ),
    "gradient_magnitude": (
        ops.gradient_magnitude(1.0),
        lambda x: ndimage.gaussian_gradient_magnitude(x, 1.0),
        "float32",
    ),
    "laplace_of_gaussian": (
        ops.laplace_of_gaussian(1.0),
        lambda x: ndimage.gaussian_laplace(x, 1.0),
        "float32",
    ),
    "difference_of_gaussians": (
        ops.difference_of_gaussians(1.0, 2.0),
        _difference_of_gaussians,
        "float32",
    ),
    "unsharp_mask": (ops.unsharp_mask(1.0, 1.5), _unsharp, "float32"),
    "correlate": (
        ops.correlate(KERNEL),
        lambda x: ndimage.correlate(x, np.array(KERNEL, np.float64)),
        "float32",
    ),
    "convolve": (
        ops.convolve(KERNEL),
        lambda x: ndimage.convolve(x, np.array(KERNEL, np.float64)),
        "float32",
    ),
    "sobel": (ops.sobel(axis=1), lambda x: ndimage.sobel(x, axis=1), "float32"),
    "prewitt": (ops.prewitt(), lambda x: ndimage.prewitt(x, axis=-1), "float32"),
    "laplace": (ops.laplace(), ndimage.laplace, "float32"),
    "custom": (
        ops.custom("scipy.ndimage:laplace", halo=1),
        ndimage.laplace,
        "float32",
    ),
}

#: One operation of each registered name, built with its example's parameters.
EXAMPLES = {name: op for name, (op, _, _) in REFERENCES.items()}


def unreferenced() -> set[str]:
    """Names registered without a reference here, or referenced but not registered."""
    return set(ops.CATALOGUE) ^ set(REFERENCES)
