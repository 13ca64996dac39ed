"""Named kernels for `convolve` and `correlate`: starting points to edit.

Each preset is built for any number of axes, so that the same name fits a 2D image
and a 3D volume. Correlating with ``sobel-<axis>`` or ``laplacian`` gives what
``scipy.ndimage.sobel`` and ``scipy.ndimage.laplace`` compute (the tests check it on
integer data, where the order of the additions cannot matter).
"""

from __future__ import annotations

import numpy as np

from chunkwise.errors import ChunkwiseError

__all__ = ["KERNEL_PRESETS", "kernel_preset"]

#: The preset names; ``<axis>`` is one of z, y, x (the last three axes).
KERNEL_PRESETS = (
    "mean",
    "laplacian",
    "sobel-z",
    "sobel-y",
    "sobel-x",
    "line-z",
    "line-y",
    "line-x",
)
#: Voxels of the ``line-*`` presets.
LINE_LENGTH = 5
_AXES = "zyx"


def kernel_preset(name: str, ndim: int = 3) -> np.ndarray:
    """The kernel called ``name`` for ``ndim`` spatial axes (float64).

    - ``mean``: the mean over a 3-voxel box;
    - ``laplacian``: the sum of second differences along every axis
      (``scipy.ndimage.laplace``);
    - ``sobel-<axis>``: a central difference along the axis, smoothed by
      ``[1, 2, 1]`` along the others (``scipy.ndimage.sobel``; correlate with it);
    - ``line-<axis>``: the mean over a line of `LINE_LENGTH` voxels along the axis.

    Examples
    --------
    >>> kernel_preset("laplacian", 2)
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    if ndim < 1:
        raise ChunkwiseError(f"a kernel needs at least one axis, got ndim={ndim}")
    kind, _, axis_name = name.partition("-")
    if name not in KERNEL_PRESETS:
        raise ChunkwiseError(
            f"unknown kernel preset {name!r}; choose from {', '.join(KERNEL_PRESETS)}"
        )
    if kind == "mean":
        return np.full((3,) * ndim, 1.0 / 3**ndim)
    if kind == "laplacian":
        kernel = np.zeros((3,) * ndim)
        centre = (1,) * ndim
        kernel[centre] = -2.0 * ndim
        for axis in range(ndim):
            for side in (0, 2):
                kernel[(*centre[:axis], side, *centre[axis + 1 :])] = 1.0
        return kernel
    axis = ndim - 3 + _AXES.index(axis_name)
    if axis < 0:
        raise ChunkwiseError(
            f"kernel preset {name!r} needs a {axis_name} axis; data of {ndim} "
            "spatial axes has only the last "
            f"{', '.join(_AXES[3 - ndim :])}"
        )
    if kind == "line":
        shape = [1] * ndim
        shape[axis] = LINE_LENGTH
        return np.full(shape, 1.0 / LINE_LENGTH)
    kernel = np.ones((1,) * ndim)
    for along in range(ndim):
        weights = [-1.0, 0.0, 1.0] if along == axis else [1.0, 2.0, 1.0]
        kernel = kernel * np.reshape(
            weights, [3 if a == along else 1 for a in range(ndim)]
        )
    return kernel
