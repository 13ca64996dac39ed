"""The catalogue of operations: lookup by name, from records and from text."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any

from chunkwise.errors import ChunkwiseError
from chunkwise.ops._axes import on_axes
from chunkwise.ops._base import Operation
from chunkwise.ops._chain import chain
from chunkwise.ops._params import DTYPES
from chunkwise.ops._registry import CATALOGUE, field_hint

__all__ = [
    "CATALOGUE",
    "DTYPES",
    "Parameter",
    "as_operation",
    "describe",
    "from_dict",
    "parameters",
    "parse",
]


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


def describe(name: str) -> list[tuple[str, str, Any]]:
    """``(parameter, annotation, default)`` for each parameter of an operation.

    The default is `inspect.Parameter.empty` for required parameters.
    """
    return [(p.name, p.annotation, p.default) for p in parameters(name)]


@dataclass(frozen=True)
class Parameter:
    """What a form needs to edit one parameter of an operation.

    ``kind`` is ``"float"``, ``"int"``, ``"choice"``, ``"range"`` (a low/high pair),
    ``"dtype"``, ``"array"`` (nested lists, a name or a ``.npy`` path, as text) or
    ``"text"``. ``per_axis`` parameters take one value or one per
    spatial axis. ``default`` is `inspect.Parameter.empty` when required; a default
    of None means the parameter is optional.
    """

    name: str
    kind: str
    default: Any
    annotation: str
    per_axis: bool = False
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    #: What the operation's docstring says about it (its Parameters entry).
    doc: str = ""
    #: Rarely changed (scipy's finer settings, the peers' conventions): a form may
    #: fold it away.
    advanced: bool = False

    @property
    def required(self) -> bool:
        """Whether the operation needs a value for it."""
        return self.default is inspect.Parameter.empty


def _parameter_docs(cls: type) -> dict[str, str]:
    """The entries of a numpydoc ``Parameters`` section, by parameter name.

    An entry that reads "As for `other`." is the other operation's.
    """
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = lines.index("Parameters") + 2
    except ValueError:
        return {}
    docs: dict[str, str] = {}
    names: list[str] = []
    for index, line in enumerate(lines[start:], start):
        if line and not line.startswith(" "):
            if lines[index + 1 : index + 2] == ["-" * len(line)]:
                break  # the next section
            names = [n.strip() for n in line.split(":")[0].split(",")]
            for name in names:
                docs[name] = ""
        elif line.strip():
            for name in names:
                docs[name] = f"{docs[name]} {line.strip()}".strip()
    for name, text in docs.items():
        other = re.fullmatch(r"As for `(\w+)`\.", text)
        if other and other.group(1) in CATALOGUE:
            docs[name] = _parameter_docs(CATALOGUE[other.group(1)]).get(name, "")
    return docs


def parameters(name: str) -> tuple[Parameter, ...]:
    """The parameters of operation ``name``, with what a form needs to edit them.

    In the order of the operation's signature; the hints are those its fields
    carry (`chunkwise.ops.param`), the docs its docstring's.

    Examples
    --------
    >>> [(p.name, p.kind, p.per_axis) for p in parameters("downsample")][:2]
    [('factor', 'int', True), ('method', 'choice', False)]
    """
    cls = _lookup(name)
    docs = _parameter_docs(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    result = []
    for p in inspect.signature(cls).parameters.values():
        hint = field_hint(fields[p.name])
        result.append(
            Parameter(
                name=p.name,
                kind=hint.kind,
                default=p.default,
                annotation=str(p.annotation),
                per_axis=hint.per_axis,
                low=hint.low,
                high=hint.high,
                step=hint.step,
                choices=hint.choices,
                doc=docs.get(p.name, ""),
                advanced=hint.advanced,
            )
        )
    return tuple(result)
