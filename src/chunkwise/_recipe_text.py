"""A recipe as a command line or a Python script that runs as is.

Each operation is written without its default parameters, then read back (with
`chunkwise.ops.parse` for ``--op`` text, `ast.literal_eval` for Python values) and
compared with the original: text that would run something else is refused, never
handed out.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shlex
from typing import TYPE_CHECKING, Any

from chunkwise._options import RunOptions
from chunkwise._recipe import SETTINGS, Recipe
from chunkwise.errors import ChunkwiseError
from chunkwise.ops import from_dict, parse

if TYPE_CHECKING:
    from chunkwise.ops import Operation

__all__ = ["to_command_line", "to_python"]

#: The ``chunkwise run`` flag of each recipe setting.
_FLAGS = {name: f"--{name.replace('_', '-')}" for name in SETTINGS}
#: Run options besides the recipe's that the command line can give.
_MACHINE_FLAGS = {
    "n_jobs": "--jobs",
    "backend": "--backend",
    "scheduler": "--scheduler",
    "block": "--block",
    "missing": "--missing-chunks",
    "timeout": "--timeout",
}
_SWITCHES = {"overwrite": "--overwrite", "resume": "--resume", "force": "--force"}


def _recipe(recipe: Recipe | Operation | str) -> Recipe:
    return recipe if isinstance(recipe, Recipe) else Recipe(operation=recipe)


def _location(path: Any, what: str) -> str:
    if not isinstance(path, str | os.PathLike):
        raise ChunkwiseError(f"the {what} must be a path or URL, got {path!r}")
    return os.fspath(path)


def _changed(options: RunOptions | None) -> dict[str, Any]:
    """The machine's settings in ``options`` that differ from the defaults."""
    if options is None:
        return {}
    default = RunOptions()
    return {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(RunOptions)
        if f.name not in SETTINGS
        and f.name != "storage_options"
        and getattr(options, f.name) != getattr(default, f.name)
    }


def _step_record(step: Operation) -> tuple[str, dict[str, Any], Any]:
    """An operation's name, its parameters that differ from the defaults, its axes."""
    record = step.to_dict()
    name = record.pop("op")
    axes = record.pop("spatial_axes", None)
    bare = from_dict({"op": name, **record})
    params = {
        f.name: getattr(bare, f.name)
        for f in dataclasses.fields(bare)
        if f.default is dataclasses.MISSING or getattr(bare, f.name) != f.default
    }
    return name, params, axes


# ------------------------------------------------------------------ command line


def _value_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    if isinstance(value, list | tuple):
        if any(isinstance(v, list | tuple) for v in value):
            return json.dumps(value, separators=(",", ":"))
        return "/".join(_value_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def op_text(step: Operation) -> str:
    """``step`` as ``--op`` text (``gaussian:sigma=2.0``), checked by parsing it."""
    name, params, axes = _step_record(step)
    items = ",".join(f"{key}={_value_text(value)}" for key, value in params.items())
    text = f"{name}:{items}" if items else name
    try:
        same = axes is None and parse(text) == step
    except ChunkwiseError:
        same = False
    if not same:
        raise ChunkwiseError(
            f"{name} cannot be written as --op text; save the recipe and run it "
            "with chunkwise run --recipe FILE"
        )
    return text


def _flag_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def to_command_line(
    recipe: Recipe | Operation | str,
    input: Any,
    output: Any,
    options: RunOptions | None = None,
) -> str:
    """The ``chunkwise run`` command that runs ``recipe`` over ``input``.

    Parameters
    ----------
    recipe : Recipe, Operation or str
        What to run; an operation alone is a recipe without settings.
    input, output : str or os.PathLike
        The paths or URLs, as the command takes them.
    options : RunOptions, optional
        The machine's settings to add (jobs, backend, scheduler, block...);
        storage options are never written (they may hold secrets).

    Returns
    -------
    str
        One line for a POSIX shell, its arguments quoted as needed.

    Raises
    ------
    ChunkwiseError
        An operation that ``--op`` text cannot express exactly (one on chosen
        axes from a recorded run); save the recipe and use ``--recipe`` instead.

    Examples
    --------
    >>> from chunkwise import ops
    >>> recipe = Recipe(operation=ops.gaussian(2), chunks=(64, 64, 64))
    >>> to_command_line(recipe, "in.zarr", "out dir/o.zarr")
    "chunkwise run in.zarr 'out dir/o.zarr' --op gaussian:sigma=2.0 --chunks 64,64,64"
    """
    recipe = _recipe(recipe)
    words = ["chunkwise", "run", _location(input, "input"), _location(output, "output")]
    for step in recipe.operation.steps:
        words += ["--op", op_text(step)]
    for name, value in recipe.settings.items():
        words += [_FLAGS[name], _flag_value(value)]
    for name, value in _changed(options).items():
        if name in _SWITCHES and value:
            words.append(_SWITCHES[name])
        elif name == "check_space":
            words.append("--no-space-check")
        elif name in _MACHINE_FLAGS and (name != "scheduler" or isinstance(value, str)):
            words += [_MACHINE_FLAGS[name], _flag_value(value)]
    return shlex.join(words)


# ------------------------------------------------------------------------ Python


def _literal(value: Any, where: str) -> str:
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise ChunkwiseError(f"{where} = {value!r} cannot be written as Python text")
    return text


def _step_python(step: Operation) -> str:
    name, params, axes = _step_record(step)
    args = ", ".join(
        f"{key}={_literal(value, f'{name}.{key}')}" for key, value in params.items()
    )
    text = f"ops.{name}({args})"
    return text if axes is None else f"ops.on_axes({text}, {tuple(axes)!r})"


def to_python(
    recipe: Recipe | Operation | str,
    input: Any,
    output: Any,
    options: RunOptions | None = None,
) -> str:
    """A Python script that runs ``recipe`` over ``input`` with `chunkwise.process`.

    Parameters are as for `to_command_line`; the script shows a progress bar.

    Examples
    --------
    >>> from chunkwise import ops
    >>> recipe = Recipe(operation=ops.invert(), codec="lz4")
    >>> print(to_python(recipe, "a.zarr", "b.zarr"), end="")
    import chunkwise
    from chunkwise import ops
    <BLANKLINE>
    op = ops.invert()
    chunkwise.process(
        'a.zarr',
        op,
        'b.zarr',
        codec='lz4',
        progress=True,
    )
    """
    recipe = _recipe(recipe)
    steps = [_step_python(step) for step in recipe.operation.steps]
    if len(steps) == 1:
        op = f"op = {steps[0]}"
    else:
        op = "op = chunkwise.chain(\n" + "".join(f"    {s},\n" for s in steps) + ")"
    settings = recipe.settings | {
        k: v
        for k, v in _changed(options).items()
        if k != "scheduler" or isinstance(v, str)
    }
    arguments = [
        repr(_location(input, "input")),
        "op",
        repr(_location(output, "output")),
        *(f"{k}={_literal(v, k)}" for k, v in settings.items()),
        "progress=True",
    ]
    call = "chunkwise.process(\n" + "".join(f"    {a},\n" for a in arguments) + ")"
    return f"import chunkwise\nfrom chunkwise import ops\n\n{op}\n{call}\n"
