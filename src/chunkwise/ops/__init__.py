"""The operations catalogue.

Each operation is a small frozen value with validated parameters. Build them with
``chunkwise.ops.<name>(...)`` and combine them with `chunkwise.chain`. Each one
registers itself where it is defined (`register`); `CATALOGUE` lists them all.
"""

from chunkwise.ops._axes import on_axes
from chunkwise.ops._base import LabelEffect, Operation
from chunkwise.ops._catalogue import CATALOGUE, DTYPES, from_dict, parse
from chunkwise.ops._chain import Chain, chain
from chunkwise.ops._custom import custom
from chunkwise.ops._describe import Entry, Parameter, describe, entry, parameters
from chunkwise.ops._filters import (
    MODES,
    difference_of_gaussians,
    gaussian,
    gradient_magnitude,
    laplace_of_gaussian,
    unsharp_mask,
)
from chunkwise.ops._kernels import KERNEL_PRESETS, kernel_preset
from chunkwise.ops._linear import convolve, correlate, laplace, prewitt, sobel
from chunkwise.ops._pointwise import (
    astype,
    clip,
    copy,
    gamma,
    invert,
    rescale,
    threshold,
)
from chunkwise.ops._rank import (
    maximum,
    median,
    minimum,
    percentile_filter,
    rank_filter,
    uniform,
)
from chunkwise.ops._registry import FAMILIES, param, register
from chunkwise.ops._resample import DOWNSAMPLE_METHODS, downsample, upsample

__all__ = [
    "CATALOGUE",
    "DOWNSAMPLE_METHODS",
    "DTYPES",
    "FAMILIES",
    "KERNEL_PRESETS",
    "MODES",
    "Chain",
    "Entry",
    "LabelEffect",
    "Operation",
    "Parameter",
    "astype",
    "chain",
    "clip",
    "convolve",
    "copy",
    "correlate",
    "custom",
    "describe",
    "difference_of_gaussians",
    "downsample",
    "entry",
    "from_dict",
    "gamma",
    "gaussian",
    "gradient_magnitude",
    "invert",
    "kernel_preset",
    "laplace",
    "laplace_of_gaussian",
    "maximum",
    "median",
    "minimum",
    "on_axes",
    "param",
    "parameters",
    "parse",
    "percentile_filter",
    "prewitt",
    "rank_filter",
    "register",
    "rescale",
    "sobel",
    "threshold",
    "uniform",
    "unsharp_mask",
    "upsample",
]
