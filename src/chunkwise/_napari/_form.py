"""Parameter forms generated from the engine's operation catalogue.

`StepEditor` edits one operation; `ChainEditor` edits a list of them that can be
added to, removed from and reordered. Forms hold values only; validation is the
engine's, when the operation is built.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
    TupleEdit,
)

from chunkwise import chain, ops

__all__ = ["AXES", "ChainEditor", "ParameterField", "StepEditor"]

AXES = ("z", "y", "x")
SAME_DTYPE = "same as input"


class ParameterField(Container):
    """One parameter: a spin box, a choice, a range, or one value per spatial axis."""

    def __init__(self, parameter: ops.Parameter, initial: Any = None) -> None:
        super().__init__(layout="horizontal", label=parameter.name, labels=False)
        self.parameter = parameter
        self.margins = (0, 0, 0, 0)
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
        p = self.parameter
        if p.kind == "float":
            return FloatSpinBox(
                value=float(value if value not in (None, "") else 0.0),
                min=p.low, max=p.high, step=p.step, label=label, tooltip=label,
            )  # fmt: skip
        if p.kind == "int":
            return SpinBox(value=int(value or 0), min=p.low, max=p.high, step=p.step)
        if p.kind == "choice":
            return ComboBox(choices=p.choices, value=value)
        if p.kind == "dtype":
            choices = (SAME_DTYPE, *p.choices) if self._optional else p.choices
            return ComboBox(choices=choices, value=value or choices[0])
        if p.kind == "range":
            low, high = value if value else (0.0, 255.0)
            return TupleEdit(
                value=(float(low), float(high)), options={"max": 1e12, "min": -1e12}
            )
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
        if isinstance(value, tuple) and self._per_axis is not None:
            self._per_axis.value = True
            for editor, v in zip(self._editors[1:], value, strict=True):
                editor.value = v
        else:
            self._editors[0].value = value


class StepEditor(Container):
    """One operation: a chooser over the catalogue and a form for its parameters."""

    def __init__(
        self, name: str = "gaussian", hints: dict[str, Any] | None = None
    ) -> None:
        super().__init__(labels=True)
        self._hints = hints or {}
        self.op_name = ComboBox(
            choices=tuple(ops.CATALOGUE), value=name, label="operation"
        )
        self.up = PushButton(text="↑", tooltip="move this step earlier")
        self.down = PushButton(text="↓", tooltip="move this step later")
        self.remove = PushButton(text="✕", tooltip="remove this step")
        header = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.op_name, self.up, self.down, self.remove],
        )
        header.margins = (0, 0, 0, 0)
        self.form = Container(labels=True)
        self.form.margins = (0, 0, 0, 0)
        self.extend([header, self.form])
        self.op_name.changed.connect(self._on_op_changed)
        self._on_op_changed(name)

    def _on_op_changed(self, name: str) -> None:
        self.form.clear()
        for parameter in ops.parameters(name):
            self.form.append(ParameterField(parameter, self._hints.get(parameter.name)))
        self.changed.emit(self)

    @property
    def fields(self) -> dict[str, ParameterField]:
        """The parameter fields by name."""
        return {f.parameter.name: f for f in self.form}

    def operation(self) -> ops.Operation:
        """Build the operation (the engine validates it)."""
        params = {name: f.value for name, f in self.fields.items()}
        return ops.CATALOGUE[self.op_name.value](
            **{k: v for k, v in params.items() if not (v is None or v == "")}
        )


class ChainEditor(Container):
    """Steps of a chain, added, removed and reordered; `operation` builds the chain."""

    def __init__(self, hints: dict[str, Any] | None = None) -> None:
        super().__init__(labels=False)
        self.hints = hints or {}
        self.steps = Container(labels=False)
        self.steps.margins = (0, 0, 0, 0)
        self.add_step = PushButton(text="+ add step")
        self.add_step.changed.connect(lambda: self.append_step("gaussian"))
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
            step.up.enabled = index > 0
            step.down.enabled = index < count - 1
            step.remove.enabled = count > 1

    def operation(self) -> ops.Operation:
        """The operation of the only step, or the chain of all of them."""
        built = [step.operation() for step in self.steps]
        return built[0] if len(built) == 1 else chain(*built)
