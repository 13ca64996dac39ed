"""Parameter forms generated from the engine's operation catalogue.

`StepEditor` edits one operation; `ChainEditor` edits a numbered list of them that
can be added to, removed from and reordered. Forms hold values only: spin boxes span
the operation's own bounds, so nothing is clamped on the way, and validation is the
engine's, when the operation is built. Tooltips are the operations' parameter docs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
    TupleEdit,
)
from qtpy.QtWidgets import QAbstractSpinBox, QFileDialog, QMenu, QSizePolicy
from superqt import QCollapsible

from chunkwise import chain, ops

__all__ = ["AXES", "ChainEditor", "ParameterField", "StepEditor", "section"]

AXES = ("z", "y", "x")
SAME_DTYPE = "same as input"
#: Spin box limits where an operation sets none: past any sensible value, short of
#: the float precision that Qt's spin boxes lose beyond 1e15.
UNBOUNDED_FLOAT = 1e12
UNBOUNDED_INT = 2**31 - 1
#: Width of a number editor, whatever its range.
MIN_EDITOR_WIDTH = 70


def tooltip(parameter: ops.Parameter) -> str:
    """The parameter's doc as plain text (reST literals unquoted)."""
    return re.sub(r"``?([^`]+)``?", r"\1", parameter.doc) or parameter.name


def section(title: str, widgets: list[Any], *, expanded: bool = False) -> Container:
    """A titled group of labelled ``widgets`` that folds away (collapsed by default).

    The returned container's ``collapsible`` is the superqt `QCollapsible`.
    """
    inner = Container(labels=True, widgets=widgets)
    inner.margins = (0, 0, 0, 0)
    outer = Container(labels=False)
    outer.margins = (0, 0, 0, 0)
    folding = QCollapsible(title)
    folding.addWidget(inner.native)
    if expanded:
        folding.expand(animate=False)
    # Holding no magicgui widgets, the outer layout takes the Qt one directly.
    outer.native.layout().addWidget(folding)
    outer.collapsible = folding
    outer.inner = inner
    return outer


#: What an optional number's box reads while it is left to the operation.
AUTO = "auto"
#: What the preset list of an array field shows before a preset is picked.
PICK_PRESET = "preset…"


class ArrayEditor(Container):
    """A kernel or footprint: nested lists typed as text, a name, or a ``.npy`` file.

    A preset fills the text in, to use or to edit; "…" picks a ``.npy`` file. The
    value is the text, which the operation itself reads (and refuses in one line).
    """

    def __init__(self, value: Any, parameter: ops.Parameter, ndim: int = 3) -> None:
        self.name = parameter.name
        self.parameter = parameter
        self._ndim = ndim
        self.presets = array_presets(parameter, ndim)
        self.preset = ComboBox(choices=(PICK_PRESET, *self.presets), value=PICK_PRESET)
        self.preset.tooltip = "fill in a preset, to use as it is or to edit"
        self.text = LineEdit(value=_array_text(value))
        self.text.native.setPlaceholderText("[[…]], a name or a .npy file")
        self.browse = PushButton(text="…", tooltip="read the array from a .npy file")
        super().__init__(
            layout="horizontal", labels=False, widgets=[self.preset, self.text]
        )
        self.append(self.browse)
        self.margins = (0, 0, 0, 0)
        self.preset.changed.connect(self._on_preset)
        self.browse.changed.connect(self._on_browse)

    @property
    def ndim(self) -> int:
        """The spatial axes the presets are made for."""
        return self._ndim

    @ndim.setter
    def ndim(self, ndim: int) -> None:
        self._ndim = ndim
        self.presets = array_presets(self.parameter, ndim)
        with self.preset.changed.blocked():
            self.preset.choices = (PICK_PRESET, *self.presets)
            self.preset.value = PICK_PRESET

    def _on_preset(self, name: str) -> None:
        if name == PICK_PRESET:
            return
        self.text.value = self.presets[name]
        with self.preset.changed.blocked():  # a menu of actions, not a state
            self.preset.value = PICK_PRESET

    def _on_browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.native, "Read an array", "", "NumPy arrays (*.npy)"
        )
        if path:
            self.text.value = path

    @property
    def value(self) -> str:  # type: ignore[override]
        """The text: nested lists, a name or a path (empty: none)."""
        return self.text.value.strip()

    @value.setter
    def value(self, value: Any) -> None:
        self.text.value = _array_text(value)


def _reads_auto(editor: Any) -> bool:
    """Whether a number's box reads "auto" (its value is its special minimum)."""
    return bool(editor.native.specialValueText()) and editor.value == editor.min


def _array_text(value: Any) -> str:
    """An array value as the text that gives it back: JSON for nested sequences."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(np.asarray(value).tolist(), separators=(",", ":"))


def array_presets(parameter: ops.Parameter, ndim: int = 3) -> dict[str, str]:
    """The presets an array parameter offers (its choices), as the text they fill in.

    A named kernel is filled in as its weights, made for ``ndim`` spatial axes
    (those along an axis the data does not have are left out); any other name (a
    footprint's) is text the operation reads as it is.
    """
    axes = "zyx"[3 - min(ndim, 3) :]
    presets = {}
    for name in parameter.choices:
        if name not in ops.KERNEL_PRESETS:
            presets[name] = name
        elif "-" not in name or name[-1] in axes:
            presets[name] = _array_text(_integral(ops.kernel_preset(name, ndim)))
    return presets


def _integral(array: np.ndarray) -> Any:
    # Whole weights read as 1, not 1.0; fractions keep all their digits.
    whole = np.all(array == np.round(array))
    return array.astype(np.int64) if whole else array


class ParameterField(Container):
    """One parameter: a spin box, a choice, a range, or one value per spatial axis."""

    def __init__(
        self, parameter: ops.Parameter, initial: Any = None, ndim: int = 3
    ) -> None:
        super().__init__(layout="horizontal", label=parameter.name, labels=False)
        self.parameter = parameter
        self._ndim = ndim
        self.margins = (0, 0, 0, 0)
        self.tooltip = tooltip(parameter)
        default = parameter.default
        if initial is not None:
            default = initial
        elif parameter.required:
            default = {"float": 0.0, "int": 1, "range": (0.0, 1.0)}.get(
                parameter.kind, "float32" if parameter.kind == "dtype" else ""
            )
        self._optional = not parameter.required and parameter.default is None
        self._editors = [self._editor(default if self._optional is False else None)]
        self._per_axis: CheckBox | None = None
        if parameter.per_axis:
            self._editors += [self._editor(default, label=axis) for axis in AXES]
            self._per_axis = CheckBox(value=False, text="per axis")
            self._per_axis.changed.connect(self._on_per_axis)
            self.extend([self._editors[0], *self._editors[1:], self._per_axis])
            self._on_per_axis(False)
        else:
            self.append(self._editors[0])
        if self._optional and parameter.kind == "range":
            self._auto = CheckBox(value=True, text="auto")
            self._auto.changed.connect(self._on_auto)
            self.append(self._auto)
            self._on_auto(True)

    def _editor(self, value: Any, label: str = "") -> Any:
        editor = self._new_editor(value)
        if self.parameter.kind in ("float", "int", "range", "choice"):
            # A spin box asks for the width of its widest value (1e12 here), a
            # choice for its longest ("grid-constant"): that would widen the dock
            # and shrink napari's canvas.
            for box in [editor.native, *editor.native.findChildren(QAbstractSpinBox)]:
                box.setMinimumWidth(MIN_EDITOR_WIDTH)
                box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        if label:
            editor.label = label
        editor.tooltip = f"{label}: {self.tooltip}" if label else self.tooltip
        return editor

    def _new_editor(self, value: Any) -> Any:
        p = self.parameter
        if p.kind in ("float", "int"):
            integral = p.kind == "int"
            unbounded = UNBOUNDED_INT if integral else UNBOUNDED_FLOAT
            low = -unbounded if p.low is None else p.low
            if self._optional:
                # None (the operation decides, as scipy's radius=None) is no number,
                # and a box showing 0 would mean radius 0: one step below the
                # lowest value reads "auto" and stands for it.
                low = low - (1 if integral else p.step or 1.0)
            # Qt's float box can read "auto"; superqt's int box cannot.
            box = FloatSpinBox if self._optional or not integral else SpinBox
            editor = box(
                value=low if value in (None, "") else value,
                min=int(low) if integral else low,
                max=unbounded if p.high is None else p.high,
                step=p.step,
            )
            if self._optional:
                if integral:
                    editor.native.setDecimals(0)
                editor.native.setSpecialValueText(AUTO)
            return editor
        if p.kind == "choice":
            return ComboBox(choices=p.choices, value=value)
        if p.kind == "dtype":
            choices = (SAME_DTYPE, *p.choices) if self._optional else p.choices
            return ComboBox(choices=choices, value=value or choices[0])
        if p.kind == "range":
            low, high = value if value else (0.0, 255.0)
            bounds = {"max": UNBOUNDED_FLOAT, "min": -UNBOUNDED_FLOAT}
            return TupleEdit(value=(float(low), float(high)), options=bounds)
        if p.kind == "array":
            return ArrayEditor(value, p, self.ndim)
        return LineEdit(value=str(value or ""))

    @property
    def ndim(self) -> int:
        """The data's spatial axes, which an array parameter's presets are made for."""
        return self._ndim

    @ndim.setter
    def ndim(self, ndim: int) -> None:
        self._ndim = ndim
        if isinstance(self._editors[0], ArrayEditor):
            self._editors[0].ndim = ndim

    def _on_per_axis(self, per_axis: bool) -> None:
        self._editors[0].visible = not per_axis
        for editor in self._editors[1:]:
            editor.visible = per_axis

    def _on_auto(self, auto: bool) -> None:
        for editor in self._editors:
            editor.enabled = not auto
        if self._per_axis is not None:
            self._per_axis.enabled = not auto

    @property
    def value(self) -> Any:  # type: ignore[override]
        """The parameter's value, as the operation takes it."""
        auto = getattr(self, "_auto", None)
        if auto is not None and auto.value:
            return None
        per_axis = self._per_axis is not None and self._per_axis.value
        shown = self._editors[1:] if per_axis else self._editors[:1]
        numbers = self.parameter.kind in ("int", "float")
        if numbers and self._optional and any(map(_reads_auto, shown)):
            return None
        whole = int if self.parameter.kind == "int" else (lambda v: v)
        if per_axis:
            return tuple(whole(editor.value) for editor in shown)
        value = self._editors[0].value
        if self.parameter.kind == "int":
            return int(value)
        if self.parameter.kind == "dtype" and value == SAME_DTYPE:
            return None
        return value

    @value.setter
    def value(self, value: Any) -> None:
        auto = getattr(self, "_auto", None)
        if auto is not None:
            auto.value = value is None
            if value is None:
                return
        if value is None and self.parameter.kind in ("int", "float"):
            for editor in self._editors:
                editor.value = editor.min  # reads "auto"
            if self._per_axis is not None:
                self._per_axis.value = False
            return
        if self._per_axis is not None:
            self._per_axis.value = isinstance(value, tuple)
            if isinstance(value, tuple):
                for editor, v in zip(self._editors[1:], value, strict=True):
                    editor.value = v
                return
        if self.parameter.kind == "dtype" and value is None:
            value = SAME_DTYPE
        self._editors[0].value = value

    @property
    def state(self) -> tuple[Any, ...]:
        """Everything typed in the field, to restore it with `restore`."""
        switches = [
            None if w is None else w.value
            for w in (self._per_axis, getattr(self, "_auto", None))
        ]
        return (*switches, *(editor.value for editor in self._editors))

    def restore(self, state: tuple[Any, ...]) -> None:
        """Put back what `state` recorded."""
        per_axis, auto, *values = state
        for editor, value in zip(self._editors, values, strict=True):
            editor.value = value
        if self._per_axis is not None:
            self._per_axis.value = per_axis
        if auto is not None:
            self._auto.value = auto


class StepEditor(Container):
    """One operation: a chooser over the catalogue and a form for its parameters.

    What was typed for an operation is kept when another is chosen, and comes
    back when it is chosen again.
    """

    def __init__(
        self,
        name: str = "gaussian",
        hints: dict[str, Any] | None = None,
        ndim: int = 3,
    ) -> None:
        super().__init__(labels=True)
        self._hints = hints or {}
        self._ndim = ndim
        self._typed: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._shown: str | None = None
        self.number = Label(value="1.")
        self.op_name = ComboBox(
            choices=tuple(ops.CATALOGUE), value=name, label="operation"
        )
        self.op_name.tooltip = "the operation of this step"
        self.up = PushButton(text="↑", tooltip="move this step earlier")
        self.down = PushButton(text="↓", tooltip="move this step later")
        self.remove = PushButton(text="✕", tooltip="remove this step")
        header = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.number, self.op_name, self.up, self.down, self.remove],
        )
        header.margins = (0, 0, 0, 0)
        self.form = Container(labels=True)
        self.form.margins = (0, 0, 0, 0)
        self.extend([header, self.form])
        self.op_name.changed.connect(self._on_op_changed)
        self._on_op_changed(name)

    def _on_op_changed(self, name: str) -> None:
        if self._shown is not None:
            self._typed[self._shown] = {n: f.state for n, f in self.fields.items()}
        self.form.clear()
        typed = self._typed.get(name, {})
        main, more = [], []
        for parameter in ops.parameters(name):
            field = ParameterField(
                parameter, self._hints.get(parameter.name), self._ndim
            )
            if parameter.name in typed:
                field.restore(typed[parameter.name])
            (more if parameter.advanced else main).append(field)
        self.form.extend(main)
        #: The finer settings, folded away (None when the operation has none).
        self.more = section("more options", more) if more else None
        if self.more is not None:
            self.more.collapsible.setToolTip(", ".join(f.label for f in more))
            # The fold is Qt's, not magicgui's: its fields' changes are passed on.
            self.more.inner.changed.connect(lambda: self.changed.emit(self))
            self.form.append(self.more)
        self._shown = name
        self.changed.emit(self)

    @property
    def ndim(self) -> int:
        """The spatial axes of the data: kernel presets are made for them."""
        return self._ndim

    @ndim.setter
    def ndim(self, ndim: int) -> None:
        self._ndim = ndim
        for field in self.fields.values():
            field.ndim = ndim

    @property
    def fields(self) -> dict[str, ParameterField]:
        """The parameter fields by name, folded ones included."""
        shown = [f for f in self.form if isinstance(f, ParameterField)]
        folded = [] if self.more is None else list(self.more.inner)
        return {f.parameter.name: f for f in [*shown, *folded]}

    def operation(self) -> ops.Operation:
        """Build the operation (the engine validates it)."""
        params = {name: f.value for name, f in self.fields.items()}
        # The catalogue's builder names a parameter that does not fit, as the
        # form's own signal may ask while the operation changes.
        return ops.from_dict(
            {"op": self.op_name.value}
            | {k: v for k, v in params.items() if not (v is None or v == "")}
        )


class ChainEditor(Container):
    """Numbered steps of a chain, added, removed and reordered.

    "+ add step" opens a menu of the operations; `operation` builds the chain.
    """

    def __init__(self, hints: dict[str, Any] | None = None) -> None:
        super().__init__(labels=False)
        self.hints = hints or {}
        self.steps = Container(labels=False)
        self.steps.margins = (0, 0, 0, 0)
        self.add_step = PushButton(text="+ add step…")
        self.add_step.tooltip = "add an operation after the last step"
        self.add_menu = QMenu(self.add_step.native)
        for name in ops.CATALOGUE:
            action = self.add_menu.addAction(name)
            action.triggered.connect(lambda _=False, n=name: self.append_step(n))
        self.add_step.native.setMenu(self.add_menu)
        self.extend([self.steps, self.add_step])
        self.append_step("gaussian")

    @property
    def ndim(self) -> int:
        """The spatial axes of the data, which each step's kernel presets fit."""
        return getattr(self, "_ndim", 3)

    @ndim.setter
    def ndim(self, ndim: int) -> None:
        self._ndim = ndim
        for step in self.steps:
            step.ndim = ndim

    def append_step(self, name: str) -> StepEditor:
        """Add a step at the end of the chain."""
        step = StepEditor(name, self.hints, self.ndim)
        step.up.changed.connect(lambda: self._move(step, -1))
        step.down.changed.connect(lambda: self._move(step, +1))
        step.remove.changed.connect(lambda: self._remove(step))
        self.steps.append(step)
        self._update_buttons()
        self.changed.emit(self)
        return step

    def _move(self, step: StepEditor, offset: int) -> None:
        index = list(self.steps).index(step)
        target = index + offset
        if 0 <= target < len(self.steps):
            self.steps.remove(step)
            self.steps.insert(target, step)
            self._update_buttons()
            self.changed.emit(self)

    def _remove(self, step: StepEditor) -> None:
        if len(self.steps) > 1:
            self.steps.remove(step)
            self._update_buttons()
            self.changed.emit(self)

    def _update_buttons(self) -> None:
        count = len(self.steps)
        for index, step in enumerate(self.steps):
            step.number.value = f"{index + 1}."
            step.up.enabled = index > 0
            step.down.enabled = index < count - 1
            step.remove.enabled = count > 1

    def operation(self) -> ops.Operation:
        """The operation of the only step, or the chain of all of them."""
        built = [step.operation() for step in self.steps]
        return built[0] if len(built) == 1 else chain(*built)
