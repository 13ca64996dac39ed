"""Recipes: what a run computes, as a small file that runs again anywhere.

A recipe holds the operations with every parameter and the settings that shape the
result (output format, chunks, codec, levels, region...), never those of one
machine (jobs, backend, storage options) nor the input and output paths. It is JSON
or YAML with a ``chunkwise_recipe: 1`` version key, and every chunkwise output
records one. Its operations are checked by `chunkwise.ops.from_dict` and its
settings by `chunkwise.RunOptions`: the same code that checks the CLI and the
widget.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chunkwise._options import RunOptions
from chunkwise.errors import ChunkwiseError
from chunkwise.ops import CATALOGUE, Chain, Operation, chain, from_dict, parse
from chunkwise.ops._catalogue import as_operation

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import zarr

    from chunkwise._run import CancelToken, Run

__all__ = ["RECIPE_VERSION", "Recipe"]

#: The version of the recipe format this chunkwise reads and writes.
RECIPE_VERSION = 1
#: The settings a recipe holds, by section: how the input is read, what is written.
SECTIONS: dict[str, tuple[str, ...]] = {
    "input": ("level", "axes", "region", "scale", "translation"),
    "output": ("format", "chunks", "shards", "zarr_format", "codec", "levels"),
}
SETTINGS = tuple(name for names in SECTIONS.values() for name in names)
_TOP = ("chunkwise_recipe", "description", "operations", *SECTIONS)
_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Operations and the settings that shape their result, to run again anywhere.

    Two equal recipes give bit-identical outputs from the same input, on any machine
    and backend. Settings left as None take their usual defaults (the input's
    chunks, ``zstd``...).

    Parameters
    ----------
    operation : Operation or str
        From `chunkwise.ops` (a chain for several), or ``--op`` text.
    format, chunks, shards, zarr_format, codec, levels : optional
        The output's layout, as for `chunkwise.RunOptions`.
    level, axes, region, scale, translation : optional
        How the input is read, as for `chunkwise.RunOptions`; ``region`` as text
        such as ``"0:64,:,:"`` (slices and boxes are turned into it).
    description : str, optional
        A note for people; it does not change the result.

    Examples
    --------
    >>> from chunkwise import ops
    >>> recipe = Recipe(ops.gaussian(2), chunks=(32, 32, 32), codec="lz4")
    >>> recipe.settings
    {'chunks': (32, 32, 32), 'codec': 'lz4'}
    >>> Recipe.from_dict(recipe.to_dict()) == recipe
    True
    """

    # The one positional field: Recipe(ops.gaussian(2), chunks=(64, 64, 64)).
    operation: Operation = dataclasses.field(kw_only=False)
    format: str | None = None
    chunks: tuple[int, ...] | None = None
    shards: tuple[int, ...] | None = None
    zarr_format: int | None = None
    codec: str | None = None
    levels: int | None = None
    level: int | None = None
    axes: str | None = None
    region: str | None = None
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        op = as_operation(self.operation)
        if isinstance(op, Chain) and len(op.steps) == 1:
            op = op.steps[0]
        object.__setattr__(self, "operation", op)
        object.__setattr__(self, "region", _region_text(self.region))
        for name in ("chunks", "shards", "scale", "translation"):
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, name, tuple(value))
        if self.description is not None and not isinstance(self.description, str):
            raise ChunkwiseError(f"description must be text, got {self.description!r}")
        RunOptions.of(**self.settings)

    def __repr__(self) -> str:
        given = self.settings
        if self.description is not None:
            given["description"] = self.description
        settings = "".join(f", {name}={value!r}" for name, value in given.items())
        return f"Recipe({self.operation!r}{settings})"

    @property
    def settings(self) -> dict[str, Any]:
        """The settings given, as `chunkwise.RunOptions` fields (None left out)."""
        values = {name: getattr(self, name) for name in SETTINGS}
        return {name: value for name, value in values.items() if value is not None}

    def options(self, options: RunOptions | None = None, **settings: Any) -> RunOptions:
        """The run options: ``options``, then the recipe's, then ``settings``.

        ``options`` gives what the recipe leaves to the machine (jobs, backend...);
        ``settings`` override the recipe's own (``chunks=...``, ``region=None``).
        """
        return RunOptions.of(options, **(self.settings | settings))

    def process(
        self,
        source: Any,
        out: Any = None,
        options: RunOptions | None = None,
        *,
        progress: bool = False,
        cancel: CancelToken | None = None,
        **settings: Any,
    ) -> zarr.Array | zarr.Group:
        """Run the recipe over ``source`` into ``out``; see `chunkwise.process`.

        ``options`` and ``settings`` are as for `options`.
        """
        from chunkwise._run import process

        run_options = self.options(options, **settings)
        return process(
            source, self.operation, out, run_options, progress=progress, cancel=cancel
        )

    def iter_process(
        self,
        source: Any,
        out: Any = None,
        options: RunOptions | None = None,
        *,
        cancel: CancelToken | None = None,
        priority: Any = None,
        **settings: Any,
    ) -> Run:
        """Start the recipe over ``source``; see `chunkwise.iter_process`."""
        from chunkwise._run import iter_process

        run_options = self.options(options, **settings)
        return iter_process(
            source,
            self.operation,
            out,
            run_options,
            cancel=cancel,
            priority=priority,
        )

    @classmethod
    def from_options(
        cls,
        operation: Operation | str,
        options: RunOptions | None = None,
        *,
        description: str | None = None,
        **settings: Any,
    ) -> Recipe:
        """The recipe of a run of ``operation`` with ``options`` (a form's values).

        What belongs to the machine (jobs, backend, storage options...) is left out.
        """
        values = RunOptions.of(options, **settings)
        return cls(
            operation=operation,
            description=description,
            **{name: getattr(values, name) for name in SETTINGS},
        )

    # ------------------------------------------------------------ as a record

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-ready data, as a recipe file holds it."""
        record: dict[str, Any] = {"chunkwise_recipe": RECIPE_VERSION}
        if self.description is not None:
            record["description"] = self.description
        record["operations"] = [step.to_dict() for step in self.operation.steps]
        settings = self.settings
        for section, names in SECTIONS.items():
            given = {name: settings[name] for name in names if name in settings}
            if given:
                record[section] = given
        return json.loads(json.dumps(record))

    @classmethod
    def from_dict(cls, record: Any, *, where: str = "recipe") -> Recipe:
        """Check a recipe record (from a file) and build the recipe.

        Each problem is one `ChunkwiseError` line that starts with ``where`` and
        names the field, as in ``recipe r.json: output.chunks: must be ...``.
        """
        from chunkwise._recipe_check import read_record

        return read_record(cls, record, where)

    @classmethod
    def from_text(cls, text: str, *, where: str = "recipe", kind: str = "") -> Recipe:
        """A recipe from JSON or YAML text (``kind``: ``json``, ``yaml``, or either)."""
        from chunkwise._recipe_check import read_text

        return cls.from_dict(read_text(text, where, kind), where=where)

    def to_text(self, format: str = "json") -> str:
        """The recipe as a file holds it: ``json`` or ``yaml`` text."""
        record = self.to_dict()
        if format == "json":
            return _json_text(record)
        if format == "yaml":
            import yaml

            return yaml.safe_dump(record, sort_keys=False, default_flow_style=None)
        raise ChunkwiseError(f"a recipe is written as json or yaml, not {format!r}")

    # ------------------------------------------------------------ files and outputs

    def save(self, path: str | os.PathLike) -> Path:
        """Write the recipe: JSON to a ``.json`` path, YAML to ``.yaml``/``.yml``."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in _SUFFIXES:
            raise ChunkwiseError(
                f"recipe {path}: name it .json, .yaml or .yml, to say its format"
            )
        path.write_text(self.to_text("json" if suffix == ".json" else "yaml"))
        return path

    @classmethod
    def load(
        cls, source: Any, *, storage_options: dict[str, Any] | None = None
    ) -> Recipe:
        """Read a recipe file (``.json``, ``.yaml``, ``.yml``) or a chunkwise output.

        Parameters
        ----------
        source : str, os.PathLike, zarr store, zarr.Array or zarr.Group
            A recipe file, or an output (a path, URL or store) whose record is read
            as `from_output` does.
        storage_options : dict, optional
            fsspec options for an output given as a URL.

        Returns
        -------
        Recipe

        Raises
        ------
        ChunkwiseError
            One line naming the file and the field at fault.

        Examples
        --------
        >>> import numpy as np, chunkwise
        >>> out = chunkwise.process(np.zeros((8, 8), np.uint8), "invert")
        >>> Recipe.load(out).operation
        invert()
        """
        from chunkwise._remote import is_url

        if not isinstance(source, str | os.PathLike) or is_url(os.fspath(source)):
            return cls.from_output(source, storage_options=storage_options)
        path = Path(source)
        suffix = path.suffix.lower()
        if path.is_dir() or (path.is_file() and suffix not in _SUFFIXES):
            return cls.from_output(path)
        if not path.is_file():
            what = "recipe file" if suffix in _SUFFIXES else "recipe file or output"
            raise ChunkwiseError(f"{path}: no such {what}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ChunkwiseError(f"recipe {path}: cannot be read: {error}") from None
        return cls.from_text(text, where=f"recipe {path}", kind=suffix.strip(".")[:4])

    @classmethod
    def from_output(
        cls, out: Any, *, storage_options: dict[str, Any] | None = None
    ) -> Recipe:
        """The recipe a chunkwise output records: what made it.

        The output's layout (chunks, codec, format, levels) is recorded; the region
        and the input's level, axes and placement are not, and are left out.
        """
        from chunkwise._remote import is_url
        from chunkwise._store import open_output, output_store

        remote = isinstance(out, str) and is_url(out)
        store = output_store(out, storage_options) if remote else out
        record = open_output(store).provenance.get("recipe")
        name = f"recipe of {out}"
        if not isinstance(record, dict) or not isinstance(record.get("output"), dict):
            raise ChunkwiseError(f"{out}: records no recipe; it is no chunkwise output")
        made = record["output"]
        output = {
            "format": made.get("format", "zarr"),
            **{key: made.get(key) for key in ("chunks", "shards", "zarr_format")},
            "codec": made.get("codec"),
            "levels": made.get("levels"),
        }
        return cls.from_dict(
            {
                "chunkwise_recipe": RECIPE_VERSION,
                "operations": [record.get("operation")],
                "output": {k: v for k, v in output.items() if v is not None},
            },
            where=name,
        )


def _json_text(record: dict[str, Any]) -> str:
    """JSON with one line per operation and per section: short enough to read."""

    def line(value: Any) -> str:
        return json.dumps(value, separators=(", ", ": "))

    parts = []
    for key, value in record.items():
        if key == "operations":
            steps = ",\n".join(f"    {line(step)}" for step in value)
            parts.append(f'  "operations": [\n{steps}\n  ]')
        else:
            parts.append(f"  {line(key)}: {line(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _region_text(region: Any) -> str | None:
    """A region as text (``"0:64,:,:"``), from text, slices or a `Box`."""
    if region is None or isinstance(region, str):
        return region
    starts, stops = getattr(region, "start", None), getattr(region, "stop", None)
    if isinstance(starts, tuple) and isinstance(stops, tuple):
        region = tuple(slice(a, b) for a, b in zip(starts, stops, strict=True))
    if isinstance(region, tuple) and all(
        isinstance(s, slice) and s.step in (None, 1) for s in region
    ):
        return ",".join(
            f"{'' if s.start is None else s.start}:{'' if s.stop is None else s.stop}"
            for s in region
        )
    raise ChunkwiseError(
        f"region must be text such as '0:64,0:512,0:512', slices or a Box, got "
        f"{region!r}"
    )


def operation_of(items: Sequence[Any] | Mapping[str, Any] | str) -> Operation:
    """The operation of a recipe's ``operations``: records or ``--op`` text."""
    listed = items if isinstance(items, list | tuple) else [items]
    steps = [parse(i) if isinstance(i, str) else from_dict(i) for i in listed]
    return steps[0] if len(steps) == 1 else chain(*steps)


def near(name: str, names: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name nearest ``name``, or nothing."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def known_parameters(name: str) -> tuple[str, ...] | None:
    """The parameters of operation ``name`` (None: unknown operation)."""
    cls = CATALOGUE.get(name)
    if cls is None:
        return None
    return tuple(f.name for f in dataclasses.fields(cls))
