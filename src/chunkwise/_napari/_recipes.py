"""The widget's "Recipe" menu: save, load and copy what the form would run.

A recipe is the engine's `chunkwise.Recipe`: the chain of steps with every
parameter, and the output settings the form holds (format, chunks, codec, Zarr
format, the input level and region). Loading one fills the form in; a recipe the
form cannot hold exactly (a codec level, a pyramid's levels...) is named in the
status line. The copied command line and Python script are the engine's
`chunkwise.to_command_line` and `chunkwise.to_python`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr
from magicgui.widgets import PushButton
from qtpy.QtWidgets import QApplication, QFileDialog, QMenu
from zarr.storage import LocalStore

import chunkwise
from chunkwise._napari._form import ChainEditor
from chunkwise._napari._layers import layer_axes, layer_source

if TYPE_CHECKING:
    from napari.layers import Image, Labels

    from chunkwise._napari._widget import ProcessWidget

__all__ = ["RecipeMenu", "form_recipe", "one_line"]

RECIPE_FILTER = "Recipes (*.json *.yaml *.yml)"
#: Stands for the input in a copied command when the layer has no store on disk.
IN_MEMORY = "INPUT.zarr"
#: Recipe settings the form has no field for: named when a recipe is loaded.
NOT_IN_FORM = ("shards", "levels", "region", "scale", "translation")


def one_line(error: BaseException) -> str:
    """An error's message on one line."""
    lines = (line.strip() for line in str(error).splitlines())
    return "; ".join(line for line in lines if line) or type(error).__name__


def form_recipe(widget: ProcessWidget) -> chunkwise.Recipe:
    """The recipe of what Run would compute now, as the form stands."""
    from chunkwise._napari._widget import _parse_chunks

    layer = widget.input.value
    level = widget.level.value if layer is not None and layer.multiscale else 0
    return chunkwise.Recipe.from_options(
        widget.steps.operation(),
        format=widget.format.value,
        chunks=_parse_chunks(widget.chunks.value),
        zarr_format=widget.zarr_format.value,
        codec=widget.codec.value,
        level=level or None,
        region=None if layer is None else widget._region_of(layer),
        axes=None if layer is None else layer_axes(layer),
    )


def layer_path(layer: Image | Labels, level: int) -> tuple[str, bool] | None:
    """Where ``layer``'s data is stored, and whether a level is chosen within it.

    The path napari opened it from, else its Zarr array's folder; None for data
    held in memory.
    """
    opened = getattr(layer.source, "path", None)
    if opened and "://" not in str(opened) and Path(opened).exists():
        return str(opened), bool(layer.multiscale)
    data = layer_source(layer, level)
    array = getattr(data, "chunkwise_input", data)
    if isinstance(array, zarr.Array) and isinstance(array.store, LocalStore):
        return os.path.join(str(array.store.root), array.path), False
    return None


def fill_chain(editor: ChainEditor, op: chunkwise.ops.Operation) -> None:
    """Replace ``editor``'s steps with ``op``'s, every parameter set."""
    before = list(editor.steps)
    for step in op.steps:
        if type(step) is not chunkwise.ops.CATALOGUE.get(step.name):
            raise chunkwise.ChunkwiseError(
                f"the form has no place for {step.name} as {type(step).__name__} "
                "(on chosen axes, say)"
            )
        shown = editor.append_step(step.name)
        fields = shown.fields
        for field in dataclasses.fields(step):
            if field.name not in fields:
                raise chunkwise.ChunkwiseError(
                    f"{step.name}'s {field.name} has no field in the form"
                )
            fields[field.name].value = getattr(step, field.name)
    for step in before:
        step.remove.native.click()  # as a user removes a step


class RecipeMenu:
    """The "Recipe" tool button and its actions on ``widget``'s form."""

    def __init__(self, widget: ProcessWidget) -> None:
        self._widget = widget
        self.button = PushButton(text="Recipe")
        self.button.tooltip = (
            "Save or load the steps and output settings as a recipe file, copy "
            "them as a command line or Python script, or run them on every "
            "selected layer"
        )
        self.menu = QMenu(self.button.native)
        self.save_action = self.menu.addAction("Save recipe…")
        self.load_action = self.menu.addAction("Load recipe…")
        self.menu.addSeparator()
        self.command_action = self.menu.addAction("Copy as command line")
        self.python_action = self.menu.addAction("Copy as Python")
        self.button.native.setMenu(self.menu)
        self.save_action.triggered.connect(self._on_save)
        self.load_action.triggered.connect(self._on_load)
        self.command_action.triggered.connect(lambda: self.copy("command line"))
        self.python_action.triggered.connect(lambda: self.copy("Python"))
        #: Asks for a recipe file: (title, suggested, save) -> path or None; tests
        #: replace it.
        self.choose_file = lambda title, suggested, save: _choose_file(
            widget.native, title, suggested, save
        )

    # --- save and load -------------------------------------------------------------
    def _suggested(self) -> Path:
        suggested = self._widget._suggested_path()
        return suggested.with_name(suggested.name.split(".")[0] + ".json")

    def _on_save(self) -> None:
        path = self.choose_file("Save recipe", self._suggested(), True)
        if path is not None:
            self.save(path)

    def save(self, path: Path) -> bool:
        """Write the form's recipe to ``path``; returns whether it was written."""
        status = self._widget.status
        try:
            form_recipe(self._widget).save(path)
        except (chunkwise.ChunkwiseError, OSError) as error:
            status.show(f"recipe not saved: {one_line(error)}")
            return False
        status.show(f"recipe saved: {path}", Path(path))
        return True

    def _on_load(self) -> None:
        path = self.choose_file("Load recipe", self._suggested().parent, False)
        if path is not None:
            self.load(path)

    def load(self, path: Path) -> bool:
        """Fill the form in from the recipe at ``path`` (left as it is on error)."""
        widget = self._widget
        if widget.sequence.running:
            widget.status.show("the layers are still running: load it afterwards")
            return False
        try:
            recipe = chunkwise.Recipe.load(path)
            _check_form_holds(recipe.operation, path)  # all or nothing
            left = self._fill_output(recipe, check=True)
        except (chunkwise.ChunkwiseError, OSError) as error:
            widget.status.show(one_line(error))
            return False
        with widget.steps.changed.blocked():
            fill_chain(widget.steps, recipe.operation)
        self._fill_output(recipe)
        widget.steps.changed.emit(widget.steps)
        note = f"; not in the form: {', '.join(left)}" if left else ""
        widget.status.show(f"recipe loaded: {path}{note}", Path(path))
        return True

    def _fill_output(self, recipe: chunkwise.Recipe, *, check: bool = False) -> list:
        """Set the output settings (with ``check``, only say what cannot be set)."""
        widget = self._widget
        values = {
            widget.format: recipe.format or "zarr",
            widget.codec: recipe.codec or "zstd",
            widget.zarr_format: recipe.zarr_format or 3,
        }
        left = [
            f"{name}={value}"
            for name, value in recipe.settings.items()
            if name in NOT_IN_FORM
        ]
        if recipe.codec is not None and recipe.codec not in widget.codec.choices:
            left.append(f"codec={recipe.codec}")
            del values[widget.codec]
        level = recipe.level or 0
        if level > widget.level.max:
            left.append(f"level={level}")
        if check:
            return left
        for box, value in values.items():
            box.value = value
        widget.chunks.value = ",".join(str(n) for n in recipe.chunks or ())
        if level <= widget.level.max:
            widget.level.value = level
        return left

    # --- copy ------------------------------------------------------------------------
    def copy(self, kind: str) -> str | None:
        """Put the form's run as a ``command line`` or ``Python`` on the clipboard."""
        widget = self._widget
        layer = widget.input.value
        if layer is None:
            widget.status.show("choose an input layer first")
            return None
        try:
            recipe = form_recipe(widget)
            found = layer_path(layer, widget.level.value)
            if found is not None and not found[1]:
                recipe = dataclasses.replace(recipe, level=None)
            source = IN_MEMORY if found is None else found[0]
            chosen = widget.output.value
            explicit = chosen is not None and str(chosen) not in ("", ".")
            target = str(chosen) if explicit else str(widget._suggested_path())
            python = kind == "Python"
            write = chunkwise.to_python if python else chunkwise.to_command_line
            text = write(recipe, source, target, self._machine())
        except chunkwise.ChunkwiseError as error:
            widget.status.show(f"not copied: {one_line(error)}")
            return None
        QApplication.clipboard().setText(text)
        if found is None:
            widget.status.show(
                f"copied as {kind}; {layer.name} is held in memory: save it as "
                f"Zarr and put its path in place of {IN_MEMORY}"
            )
        else:
            widget.status.show(f"copied as {kind}: it writes {target}")
        return text

    def _machine(self) -> chunkwise.RunOptions:
        """The form's jobs and backend (and a dask scheduler's address)."""
        widget = self._widget
        backend = widget.backend.value
        scheduler = widget.scheduler.value.strip() if backend == "dask" else ""
        return chunkwise.RunOptions(
            n_jobs=widget.n_jobs.value,
            backend=backend,
            scheduler=scheduler or None,
        )


def _check_form_holds(op: chunkwise.ops.Operation, path: Path) -> None:
    """Raise unless a form filled in with ``op`` gives ``op`` back exactly."""
    trial = ChainEditor()
    try:
        fill_chain(trial, op)
        problem = None if trial.operation() == op else "it would change a parameter"
    except chunkwise.ChunkwiseError as error:
        problem = one_line(error)
    finally:
        trial.native.deleteLater()
    if problem is not None:
        raise chunkwise.ChunkwiseError(
            f"recipe {path}: not loaded into the form: {problem}; run it with "
            "chunkwise run --recipe"
        )


def _choose_file(parent: Any, title: str, suggested: Path, save: bool) -> Path | None:
    """Ask for a recipe file to write (``save``) or to read; None if cancelled."""
    if save:
        path, _ = QFileDialog.getSaveFileName(
            parent, title, str(suggested), RECIPE_FILTER
        )
    else:
        path, _ = QFileDialog.getOpenFileName(
            parent, title, str(suggested), RECIPE_FILTER
        )
    if not path:
        return None
    chosen = Path(path)
    if save and chosen.suffix.lower() not in (".json", ".yaml", ".yml"):
        chosen = chosen.with_name(chosen.name + ".json")
    return chosen
