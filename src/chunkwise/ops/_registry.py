"""The registry of operations: each one registers itself where it is defined.

`register` is a class decorator, as zarr's ``register_codec`` is a call beside the
codec. The class says what it is (``name``, ``family``, ``labels``) and each field
carries its form hints (`param`), the way magicgui keeps widget options at the
parameter. The catalogue, the command line, the napari form and the reference pages
all read this one registry; a declaration that is incomplete is refused where the
class is defined, not found later as a spin box of ±1e12.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from chunkwise.ops._base import LabelEffect, Operation

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "KINDS",
    "Hint",
    "exact_as",
    "field_hint",
    "param",
    "register",
]

#: The families of operations, in the order of the catalogue, and what each
#: family's operations have in common.
FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "pointwise": "Each output voxel from the same input voxel.",
        "resampling": "Fewer or more voxels, by integer factors per axis.",
        "neighbourhood": "Smoothing and order statistics over a window of voxels.",
        "features": "Gaussian derivatives, band-pass and sharpening.",
        "linear": "Correlation and convolution with a kernel, and derivative kernels.",
        "custom": "Your own function over each block and a halo.",
    }
)

#: What a form can edit (`chunkwise.ops.Parameter.kind`).
KINDS = ("float", "int", "choice", "range", "dtype", "array", "text")

#: The key of a field's hint in its `dataclasses.field` metadata.
_HINT = "chunkwise"
#: A per-axis annotation part, such as ``tuple[float, ...]``.
_PER_AXIS = re.compile(r"tuple\[\w+, \.\.\.\]")
#: Kinds (and spin box steps) that follow from a scalar annotation.
_ANNOTATED = {
    "float": ("float", 1.0),
    "int": ("int", 1),
    "str": ("text", None),
    "tuple[float, float]": ("range", None),
}


@dataclass(frozen=True)
class Hint:
    """How a form edits one parameter of an operation (see `param`).

    Left unset, ``kind`` follows from the field's annotation (``float``, ``int``,
    ``str`` as text, ``tuple[float, float]`` as a range; ``choice`` where there are
    ``choices``) and so does ``step`` (1 for numbers). ``per_axis`` is always the
    annotation's: a ``tuple[..., ...]`` part means one value per spatial axis.
    ``low`` and ``high`` are the operation's own bounds, so that a form offers
    exactly what the operation accepts; ``advanced`` ones a form may fold away.
    The ``choices`` of an array are names a form offers to start from.
    """

    kind: str | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    advanced: bool = False
    per_axis: bool = False


def param(
    default: Any = dataclasses.MISSING,
    *,
    kw_only: bool = False,
    kind: str | None = None,
    low: float | None = None,
    high: float | None = None,
    step: float | None = None,
    choices: tuple[Any, ...] = (),
    advanced: bool = False,
) -> Any:
    """A field of an operation that carries its form hints (a `Hint`).

    ``default`` and ``kw_only`` are those of `dataclasses.field`.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class blur:
    ...     sigma: float = param(1.0, low=0.0, step=0.5)
    >>> field_hint(dataclasses.fields(blur)[0])
    Hint(kind='float', low=0.0, high=None, step=0.5, choices=(), advanced=False, \
per_axis=False)
    """
    hint = Hint(kind, low, high, step, tuple(choices), advanced)
    return dataclasses.field(default=default, kw_only=kw_only, metadata={_HINT: hint})


def exact_as(reference: str) -> str:
    """The exactness of an operation that is ``reference`` computed block by block."""
    return (
        f"Bit-identical to {reference} on the whole array, for every shape, chunking "
        "and boundary mode (the wrap modes included)."
    )


def field_hint(field: dataclasses.Field) -> Hint:
    """The whole hint of an operation's field: its own, completed from its annotation.

    Raises
    ------
    TypeError
        If the field names no kind and its annotation gives none.
    """
    given = field.metadata.get(_HINT, Hint())
    parts = [part.strip() for part in str(field.type).split("|")]
    per_axis = any(_PER_AXIS.fullmatch(part) for part in parts)
    scalars = [p for p in parts if p != "None" and not _PER_AXIS.fullmatch(p)]
    derived = _ANNOTATED.get(scalars[0]) if len(scalars) == 1 else None
    kind = given.kind or ("choice" if given.choices else derived and derived[0])
    if kind not in KINDS:
        raise TypeError(
            f"parameter {field.name} ({field.type}) needs a kind, one of "
            f"{', '.join(KINDS)}: give it with param(kind=...)"
        )
    if kind in ("choice", "dtype") and not given.choices:
        raise TypeError(f"parameter {field.name} is a {kind} without choices")
    step = given.step
    if step is None and derived is not None and derived[0] == kind:
        step = derived[1]
    return dataclasses.replace(given, kind=kind, step=step, per_axis=per_axis)


#: Keys that records (`Operation.to_dict`, `on_axes`) use beside the parameters.
_RESERVED = frozenset({"op", "spatial_axes"})
_REGISTRY: dict[str, type[Operation]] = {}
#: The registered operations by name, by family (`FAMILIES` order) and within a
#: family in the order they were defined. A read-only view: add with `register`.
CATALOGUE: Mapping[str, type[Operation]] = MappingProxyType(_REGISTRY)

_Class = TypeVar("_Class", bound=type)


def register(cls: _Class) -> _Class:
    """Add an operation to the catalogue under its ``name``; a class decorator.

    Put it above ``@dataclass(frozen=True)``. The class sets ``name`` (its own),
    ``family`` (one of `FAMILIES`), ``labels`` (a `LabelEffect`, or a property
    giving one) and ``exactness`` (a sentence), and every field has a kind for a
    form, from its annotation or from `param`.

    Raises
    ------
    TypeError
        If any of that is missing, or another operation has the name already.

    Examples
    --------
    >>> from chunkwise import ops
    >>> ops.CATALOGUE["gaussian"] is ops.gaussian
    True
    """
    problems = _problems(cls)
    if problems:
        raise TypeError(f"cannot register {cls.__qualname__}: {'; '.join(problems)}")
    _REGISTRY[cls.name] = cls
    families = list(FAMILIES)
    ordered = sorted(_REGISTRY.values(), key=lambda c: families.index(c.family))
    _REGISTRY.clear()
    _REGISTRY.update((c.name, c) for c in ordered)
    return cls


def _problems(cls: type) -> list[str]:
    if not (isinstance(cls, type) and issubclass(cls, Operation)):
        return ["it is not a subclass of chunkwise.ops.Operation"]
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        return ["it is not a frozen dataclass (put @register above it)"]
    problems = []
    name = vars(cls).get("name")
    if not (isinstance(name, str) and name.isidentifier()):
        problems.append("it sets no name of its own (an identifier)")
    elif name == "chain":
        problems.append("'chain' names the records of chains")
    elif name in _REGISTRY and _origin(_REGISTRY[name]) != _origin(cls):
        problems.append(f"{_origin(_REGISTRY[name])} is registered as {name!r}")
    if getattr(cls, "family", None) not in FAMILIES:
        problems.append(f"its family is not one of {', '.join(FAMILIES)}")
    if not isinstance(getattr(cls, "labels", None), LabelEffect | property):
        problems.append("it sets no labels (a LabelEffect)")
    if not (isinstance(getattr(cls, "exactness", None), str) and cls.exactness):
        problems.append("it states no exactness")
    for field in dataclasses.fields(cls):
        if field.name in _RESERVED:
            problems.append(f"parameter {field.name} would clash in its records")
            continue
        try:
            hint = field_hint(field)
        except TypeError as error:
            problems.append(str(error))
            continue
        if hint.advanced and field.default is dataclasses.MISSING:
            problems.append(f"parameter {field.name} is required, so not advanced")
    return problems


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
