"""The catalogue of operations: lookup by name, from records and from text."""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._chain import chain
from chunkwise.ops._custom import custom
from chunkwise.ops._filters import (
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
from chunkwise.ops._pointwise import astype, clip, gamma, invert, rescale, threshold
from chunkwise.ops._resample import downsample, upsample

if TYPE_CHECKING:
    from chunkwise.ops._base import Operation

__all__ = ["CATALOGUE", "describe", "from_dict", "parse"]

CATALOGUE: dict[str, type[Operation]] = {
    op.name: op
    for op in (
        clip,
        threshold,
        rescale,
        invert,
        astype,
        gamma,
        downsample,
        upsample,
        gaussian,
        median,
        uniform,
        minimum,
        maximum,
        gradient_magnitude,
        laplace_of_gaussian,
        difference_of_gaussians,
        unsharp_mask,
        custom,
    )
}


def _lookup(name: str) -> type[Operation]:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ChunkwiseError(
            f"unknown operation {name!r}; choose from {', '.join(CATALOGUE)}"
        ) from None


def _build(name: str, params: dict[str, Any]) -> Operation:
    cls = _lookup(name)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ChunkwiseError(
            f"{name} has no parameter {', '.join(unknown)}; its parameters are "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    try:
        return cls(**params)
    except TypeError as error:
        raise ChunkwiseError(f"{name}: {error}") from error


def from_dict(record: dict[str, Any]) -> Operation:
    """Rebuild an operation from its `Operation.to_dict` record."""
    params = dict(record)
    name = params.pop("op", None)
    if name == "chain":
        return chain(*(from_dict(step) for step in params["steps"]))
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return _build(str(name), params)


def _parse_value(text: str) -> Any:
    if "/" in text:
        return tuple(_parse_value(part) for part in text.split("/"))
    lowered = text.lower()
    if lowered in ("none", "true", "false"):
        return {"none": None, "true": True, "false": False}[lowered]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse(spec: str) -> Operation:
    """Build an operation from text such as ``"gaussian:sigma=1/2/2,mode=nearest"``.

    Per-axis values and ranges are separated by ``/``.

    Examples
    --------
    >>> parse("downsample:factor=2,method=max")
    downsample(factor=2, method='max')
    """
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ChunkwiseError(
                f"malformed operation {spec!r}: write name:param=value,param=value"
            )
        params[key.strip()] = _parse_value(value.strip())
    return _build(name.strip(), params)


def describe(name: str) -> list[tuple[str, str, Any]]:
    """``(parameter, annotation, default)`` for each parameter of an operation.

    The default is `inspect.Parameter.empty` for required parameters.
    """
    signature = inspect.signature(_lookup(name))
    return [
        (p.name, str(p.annotation), p.default) for p in signature.parameters.values()
    ]
