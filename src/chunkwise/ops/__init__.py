"""The operations catalogue.

Each operation is a small frozen value with validated parameters. Build them with
``chunkwise.ops.<name>(...)`` and combine them with `chunkwise.chain`.
"""

from chunkwise.ops._axes import on_axes
from chunkwise.ops._base import Operation
from chunkwise.ops._catalogue import (
    CATALOGUE,
    DTYPES,
    Parameter,
    describe,
    from_dict,
    parameters,
    parse,
)
from chunkwise.ops._chain import Chain, chain
from chunkwise.ops._custom import custom
from chunkwise.ops._filters import (
    MODES,
    difference_of_gaussians,
    gaussian,
    gradient_magnitude,
    laplace_of_gaussian,
    maximum,
    median,
    minimum,
    uniform,
    unsharp_mask,
)
from chunkwise.ops._pointwise import (
    astype,
    clip,
    copy,
    gamma,
    invert,
    rescale,
    threshold,
)
from chunkwise.ops._resample import DOWNSAMPLE_METHODS, downsample, upsample

__all__ = [
    "CATALOGUE",
    "DOWNSAMPLE_METHODS",
    "DTYPES",
    "MODES",
    "Chain",
    "Operation",
    "Parameter",
    "astype",
    "chain",
    "clip",
    "copy",
    "custom",
    "describe",
    "difference_of_gaussians",
    "downsample",
    "from_dict",
    "gamma",
    "gaussian",
    "gradient_magnitude",
    "invert",
    "laplace_of_gaussian",
    "maximum",
    "median",
    "minimum",
    "on_axes",
    "parameters",
    "parse",
    "rescale",
    "threshold",
    "uniform",
    "unsharp_mask",
    "upsample",
]
