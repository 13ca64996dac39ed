"""Reading a recipe record: each problem is one line that names its field.

The operations are checked by `chunkwise.ops.from_dict` (or `parse` for ``--op``
text) and the settings by `chunkwise.RunOptions`; this module only says where in
the file the problem is.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chunkwise import __version__
from chunkwise._options import RunOptions
from chunkwise._recipe import (
    _TOP,
    RECIPE_VERSION,
    SECTIONS,
    SETTINGS,
    known_parameters,
    near,
    operation_of,
)
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from chunkwise._recipe import Recipe
    from chunkwise.ops import Operation

#: Run options a recipe leaves to the machine, with the command-line flag for each.
_MACHINE = {
    "n_jobs": "-j",
    "backend": "--backend",
    "scheduler": "--scheduler",
    "block": "--block",
    "cache_bytes": None,
    "nice": None,
    "timeout": "--timeout",
    "missing": "--missing-chunks",
    "check_space": "--no-space-check",
    "storage_options": "--storage-option",
    "overwrite": "--overwrite",
    "resume": "--resume",
    "force": "--force",
}


def read_text(text: str, where: str, kind: str) -> Any:
    """JSON or YAML text as data (``kind``: ``json``, ``yaml``/``yml``, or both)."""
    if kind != "yaml" and kind != "yml":
        try:
            return json.loads(text)
        except ValueError as error:
            if kind == "json":
                raise ChunkwiseError(f"{where}: not valid JSON: {error}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ChunkwiseError(f"{where}: not valid YAML: {problem}{at}") from None


def read_record(cls: type[Recipe], record: Any, where: str) -> Recipe:
    """Check ``record`` field by field and build the recipe."""
    if not isinstance(record, dict):
        raise ChunkwiseError(
            f"{where}: a recipe is a mapping that starts with chunkwise_recipe: "
            f"{RECIPE_VERSION}, got {type(record).__name__}"
        )
    _check_version(record, where)
    for key in record:
        if key not in _TOP:
            raise ChunkwiseError(f"{where}: {key}: unknown field{near(key, _TOP)}")
    description = record.get("description")
    if description is not None and not isinstance(description, str):
        raise ChunkwiseError(f"{where}: description: must be text")
    operation = _operation(record.get("operations"), where)
    settings: dict[str, Any] = {}
    for section, names in SECTIONS.items():
        settings |= _section(record.get(section), section, names, where)
    try:
        return cls(operation=operation, description=description, **settings)
    except ChunkwiseError as error:
        # What only the settings together rule out (levels without ome-zarr).
        raise ChunkwiseError(f"{where}: {error}") from None


def _check_version(record: dict[str, Any], where: str) -> None:
    version = record.get("chunkwise_recipe")
    if "chunkwise_recipe" not in record:
        raise ChunkwiseError(
            f"{where}: chunkwise_recipe: missing; a recipe starts with "
            f"chunkwise_recipe: {RECIPE_VERSION}"
        )
    if isinstance(version, bool) or version != RECIPE_VERSION:
        raise ChunkwiseError(
            f"{where}: chunkwise_recipe: version {version!r} is not one this "
            f"chunkwise ({__version__}) reads; it reads version {RECIPE_VERSION}"
        )


def _operation(items: Any, where: str) -> Operation:
    field = f"{where}: operations"
    if items is None:
        raise ChunkwiseError(
            f"{field}: missing; list the operations, as [{{op: gaussian, sigma: 2}}] "
            "or ['gaussian:sigma=2'] ([copy] converts)"
        )
    listed = items if isinstance(items, list) else [items]
    if not listed:
        raise ChunkwiseError(f"{field}: empty; [{{op: copy}}] converts the input")
    for index, item in enumerate(listed):
        _check_step(item, f"{field}[{index}]")
    return operation_of(listed)


def _check_step(item: Any, field: str) -> None:
    """Build one step alone, so that its error names it."""
    if isinstance(item, dict):
        name = item.get("op")
        if name is None:
            raise ChunkwiseError(f"{field}.op: missing; name the operation")
        known = known_parameters(str(name))
        for key in item:
            if known is not None and key not in (*known, "op", "spatial_axes"):
                raise ChunkwiseError(
                    f"{field}.{key}: {name} has no parameter {key}{near(key, known)}"
                )
    elif not isinstance(item, str):
        raise ChunkwiseError(
            f"{field}: an operation is a mapping such as {{op: gaussian, sigma: 2}} "
            f"or text such as 'gaussian:sigma=2', got {item!r}"
        )
    try:
        operation_of([item])
    except ChunkwiseError as error:
        message = str(error)
        first = message.split(" ", 1)[0]
        if isinstance(item, dict) and first in item and first != "op":
            message = f"{first}: {message.split(' ', 1)[1]}"
            raise ChunkwiseError(f"{field}.{message}") from None
        raise ChunkwiseError(f"{field}: {message}") from None


def _section(
    values: Any, section: str, names: tuple[str, ...], where: str
) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ChunkwiseError(
            f"{where}: {section}: must be a mapping of settings such as "
            f"{names[0]}: ..., got {values!r}"
        )
    for key in values:
        if key not in names:
            raise ChunkwiseError(f"{where}: {section}.{key}: {_not_here(key, names)}")
    for key, value in values.items():
        try:
            RunOptions.of(**{key: value})
        except ChunkwiseError as error:
            message = str(error).removeprefix(f"{key} ")
            raise ChunkwiseError(f"{where}: {section}.{key}: {message}") from None
    return dict(values)


def _not_here(key: str, names: tuple[str, ...]) -> str:
    for other, others in SECTIONS.items():
        if key in others:
            return f"belongs in {other}, not here"
    if key in _MACHINE:
        flag = _MACHINE[key]
        how = f" ({flag})" if flag else ""
        return (
            f"not a recipe setting: it depends on the machine; give it when "
            f"running{how}"
        )
    return f"unknown setting{near(key, names) or near(key, SETTINGS)}"
