"""The catalogue of operations: lookup by name, from records and from text."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._axes import on_axes
from chunkwise.ops._base import Operation
from chunkwise.ops._chain import chain
from chunkwise.ops._params import DTYPES
from chunkwise.ops._registry import CATALOGUE

__all__ = ["CATALOGUE", "DTYPES", "as_operation", "from_dict", "lookup", "parse"]


def lookup(name: str) -> type[Operation]:
    """The registered operation class called ``name``, else a `ChunkwiseError`."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ChunkwiseError(
            f"unknown operation {name!r}; choose from {', '.join(CATALOGUE)}"
        ) from None


def _build(name: str, params: dict[str, Any]) -> Operation:
    cls = lookup(name)
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
    if not isinstance(record, dict):
        raise ChunkwiseError(f"an operation record is a dict, got {record!r}")
    params = dict(record)
    name = params.pop("op", None)
    if name == "chain":
        steps = params.get("steps")
        if not isinstance(steps, list | tuple):
            raise ChunkwiseError(f"a chain record needs a list of steps, got {steps!r}")
        return chain(*(from_dict(step) for step in steps))
    spatial = params.pop("spatial_axes", None)
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    op = _build(str(name), params)
    if spatial is None:
        return op
    if not isinstance(spatial, list | tuple):
        raise ChunkwiseError(f"spatial_axes must be a list, got {spatial!r}")
    return on_axes(op, spatial)


def _parse_value(text: str) -> Any:
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ChunkwiseError(
                f"cannot read {text!r} as nested lists: {error}"
            ) from None
    if text.endswith(".npy"):
        return text  # a file path, whose / are not per-axis separators
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


def _split_items(text: str) -> list[str]:
    """Split ``param=value,param=value`` at the commas outside brackets."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return items


def parse(spec: str) -> Operation:
    """Build an operation from text such as ``"gaussian:sigma=1/2/2,mode=nearest"``.

    Per-axis values and ranges are separated by ``/``. A value in brackets is read
    as JSON (``footprint=[[0,1,0],[1,1,1],[0,1,0]]``); a value ending in ``.npy`` is
    a file path.

    Examples
    --------
    >>> parse("downsample:factor=2,method=max")
    downsample(factor=2, method='max')
    """
    if not isinstance(spec, str):
        raise ChunkwiseError(f"an operation is text such as 'invert', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, _split_items(rest)):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ChunkwiseError(
                f"malformed operation {spec!r}: write name:param=value,param=value"
            )
        if key.strip() in params:
            raise ChunkwiseError(
                f"{name.strip()}: parameter {key.strip()} is given twice in {spec!r}; "
                "per-axis values are written 1/2/2"
            )
        params[key.strip()] = _parse_value(value.strip())
    return _build(name.strip(), params)


def as_operation(op: object) -> Operation:
    """Return ``op`` as an operation: itself, or parsed from text.

    Public entry points call this on their ``op`` argument: text such as
    ``"gaussian:sigma=2"`` is parsed as `parse` does, and anything else is one
    clear error rather than an AttributeError deep inside.

    Examples
    --------
    >>> as_operation("downsample:factor=2")
    downsample(factor=2, method='mean')
    """
    if isinstance(op, Operation):
        return op
    if isinstance(op, str):
        return parse(op)
    raise ChunkwiseError(
        "op must be an operation from chunkwise.ops (such as ops.gaussian(2)), a "
        f"chain of them, or text such as 'gaussian:sigma=2'; got {op!r}"
    )
