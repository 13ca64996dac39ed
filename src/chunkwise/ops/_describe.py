"""What the catalogue says about each operation: for forms, listings and references.

`parameters` gives what a form needs to edit each parameter (the hints its field
carries, its docstring entry); `entry` adds what a reference page shows about the
operation itself: its family, summary, what it does to labels and how exact it is.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from typing import Any

from chunkwise.ops._base import LabelEffect
from chunkwise.ops._catalogue import CATALOGUE, lookup
from chunkwise.ops._registry import field_hint

__all__ = ["Entry", "Parameter", "describe", "entry", "parameters"]


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
    spatial axis. ``choices`` are the values of a choice or dtype, and the names an
    array can start from (named footprints, `KERNEL_PRESETS`). ``default`` is
    `inspect.Parameter.empty` when required; a default of None means the parameter
    is optional.
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
    cls = lookup(name)
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


@dataclass(frozen=True)
class Entry:
    """An operation as a reference page shows it, from the operation's own class.

    ``labels`` is what it does to labels, or None where a parameter decides; then
    ``labels_doc`` says how.
    """

    name: str
    #: A key of `chunkwise.ops.FAMILIES`.
    family: str
    #: The first line of its docstring.
    summary: str
    #: How its chunked result compares with its whole-array reference.
    exactness: str
    labels: LabelEffect | None
    labels_doc: str
    parameters: tuple[Parameter, ...]


def entry(name: str) -> Entry:
    """Everything the catalogue says about operation ``name``, for a reference page.

    Examples
    --------
    >>> e = entry("threshold")
    >>> e.family, e.labels.value, [p.name for p in e.parameters]
    ('pointwise', 'makes', ['value'])
    >>> entry("upsample").labels_doc
    'Keeps labels with order 0 (repetition); order 1 blends them.'
    """
    cls = lookup(name)
    labels = cls.labels
    return Entry(
        name=name,
        family=cls.family,
        summary=(inspect.getdoc(cls) or "").splitlines()[0],
        exactness=cls.exactness,
        labels=labels if isinstance(labels, LabelEffect) else None,
        labels_doc=inspect.getdoc(labels) or "" if isinstance(labels, property) else "",
        parameters=parameters(name),
    )
