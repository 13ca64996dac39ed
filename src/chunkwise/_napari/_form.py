"""Parameter forms generated from the engine's operation catalogue.

`StepEditor` edits one operation; `ChainEditor` edits a numbered list of them that
can be added to, removed from and reordered. Forms hold values only: spin boxes span
the operation's own bounds, so nothing is clamped on the way, and validation is the
engine's, when the operation is built. Tooltips are the operations' parameter docs.
"""

from __future__ import annotations

import re
from typing import Any

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
from qtpy.QtWidgets import QAbstractSpinBox, QMenu, QSizePolicy
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


class ParameterField(Container):
    """One parameter: a spin box, a choice, a range, or one value per spatial axis."""

    def __init__(self, parameter: ops.Parameter, initial: Any = None) -> None:
        super().__init__(layout="horizontal", label=parameter.name, labels=False)
        self.parameter = parameter
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
            self._auto.changed.connect(
                lambda on: setattr(self._editors[0], "enabled", not on)
            )
            self._editors[0].enabled = False
            self.append(self._auto)

    def _editor(self, value: Any, label: str = "") -> Any:
        editor = self._new_editor(value)
        if self.parameter.kind in ("float", "int", "range"):
            # A spin box asks for the width of its widest value (1e12 here): that
            # would widen the dock and shrink napari's canvas.
            for box in [editor.native, *editor.native.findChildren(QAbstractSpinBox)]:
                box.setMinimumWidth(MIN_EDITOR_WIDTH)
                box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        if label:
            editor.label = label
        editor.tooltip = f"{label}: {self.tooltip}" if label else self.tooltip
        return editor

    def _new_editor(self, value: Any) -> Any:
        p = self.parameter
        if p.kind == "float":
            return FloatSpinBox(
                value=float(value if value not in (None, "") else 0.0),
                min=-UNBOUNDED_FLOAT if p.low is None else p.low,
                max=UNBOUNDED_FLOAT if p.high is None else p.high,
                step=p.step,
            )
        if p.kind == "int":
            return SpinBox(
                value=int(value or 0),
                min=-UNBOUNDED_INT if p.low is None else int(p.low),
                max=UNBOUNDED_INT if p.high is None else int(p.high),
                step=p.step,
            )
        if p.kind == "choice":
            return ComboBox(choices=p.choices, value=value)
        if p.kind == "dtype":
            choices = (SAME_DTYPE, *p.choices) if self._optional else p.choices
            return ComboBox(choices=choices, value=value or choices[0])
        if p.kind == "range":
            low, high = value if value else (0.0, 255.0)
            bounds = {"max": UNBOUNDED_FLOAT, "min": -UNBOUNDED_FLOAT}
            return TupleEdit(value=(float(low), float(high)), options=bounds)
        return LineEdit(value=str(value or ""))

    def _on_per_axis(self, per_axis: bool) -> None:
        self._editors[0].visible = not per_axis
        for editor in self._editors[1:]:
            editor.visible = per_axis

    @property
    def value(self) -> Any:  # type: ignore[override]
        """The parameter's value, as the operation takes it."""
        if self._per_axis is not None and self._per_axis.value:
            return tuple(editor.value for editor in self._editors[1:])
        value = self._editors[0].value
        if self.parameter.kind == "dtype" and value == SAME_DTYPE:
            return None
        if self.parameter.kind == "range" and self._optional and self._auto.value:
            return None
        return value

    @value.setter
    def value(self, value: Any) -> None:
        if self._per_axis is not None:
            self._per_axis.value = isinstance(value, tuple)
            if isinstance(value, tuple):
                for editor, v in zip(self._editors[1:], value, strict=True):
                    editor.value = v
                return
        if self.parameter.kind == "range" and self._optional:
            self._auto.value = value is None
            if value is None:
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
        self, name: str = "gaussian", hints: dict[str, Any] | None = None
    ) -> None:
        super().__init__(labels=True)
        self._hints = hints or {}
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
        for parameter in ops.parameters(name):
            field = ParameterField(parameter, self._hints.get(parameter.name))
            if parameter.name in typed:
                field.restore(typed[parameter.name])
            self.form.append(field)
        self._shown = name
        self.changed.emit(self)

    @property
    def fields(self) -> dict[str, ParameterField]:
        """The parameter fields by name."""
        return {f.parameter.name: f for f in self.form}

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

    def append_step(self, name: str) -> StepEditor:
        """Add a step at the end of the chain."""
        step = StepEditor(name, self.hints)
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
