"""Recent runs: found again after the dock or napari is reopened.

A short list in a JSON file, newest first: where each run writes, from which layer,
and whether it is scratch. What a run stands at is never stored here: it is read
from the output itself (`chunkwise.output_status`), so the list cannot go stale.
The file sits in the user's state folder, or in ``$CHUNKWISE_STATE_DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs
from magicgui.widgets import ComboBox, Container, PushButton
from qtpy.QtWidgets import QComboBox

import chunkwise

__all__ = ["ENV", "KEEP", "RecentRun", "RecentRuns", "load", "recent_file", "remember"]

#: Overrides the folder of the list (tests point it at a temporary one).
ENV = "CHUNKWISE_STATE_DIR"
#: How many runs the list keeps.
KEEP = 10


@dataclass(frozen=True)
class RecentRun:
    """A run the widget started: its output and what it was made from."""

    path: str
    input: str
    operation: str
    scratch: bool
    started: float

    def label(self) -> str:
        """One line for the list: what, from what, where it stands, where."""
        status = chunkwise.output_status(self.path)
        where = f"scratch {self.path}" if self.scratch else self.path
        return f"{status or 'unreadable'} · {self.operation} of {self.input} · {where}"


def recent_file() -> Path:
    """The JSON file that holds the list."""
    folder = os.environ.get(ENV) or platformdirs.user_state_dir("chunkwise", False)
    return Path(folder) / "recent-runs.json"


def load() -> list[RecentRun]:
    """The recent runs whose output still exists, newest first."""
    try:
        records = json.loads(recent_file().read_text())
    except (OSError, ValueError):
        return []
    runs = []
    for record in records if isinstance(records, list) else []:
        with contextlib.suppress(TypeError):
            run = RecentRun(**record)
            if Path(run.path).exists():
                runs.append(run)
    return runs


def remember(path: Path, input: str, operation: str, *, scratch: bool) -> None:
    """Put the run into ``path`` first in the list."""
    run = RecentRun(str(path), input, operation, scratch, time.time())
    runs = [run, *(old for old in load() if old.path != run.path)][:KEEP]
    _save(runs)


def forget(path: Path) -> None:
    """Take the run into ``path`` off the list."""
    _save([run for run in load() if run.path != str(path)])


def _save(runs: list[RecentRun]) -> None:
    file = recent_file()
    # A list that cannot be written costs only the list: never a run.
    with contextlib.suppress(OSError):
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(".partial")
        partial.write_text(json.dumps([asdict(run) for run in runs], indent=1))
        partial.replace(file)


class RecentRuns(Container):
    """The list of recent runs, with Resume and Open for the one selected.

    Parameters
    ----------
    on_resume, on_open : callable
        Called with the selected `RecentRun`.
    """

    def __init__(self, on_resume: Any, on_open: Any) -> None:
        self.runs = ComboBox(label="recent runs", choices=self._choices)
        # Entries hold paths: the list elides them rather than widen the dock.
        combo = self.runs.native
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        combo.setMinimumContentsLength(12)
        self.runs.tooltip = (
            "Runs started from this panel, newest first, with where they stand; "
            "an unfinished one can be resumed (open its input first)"
        )
        self.resume = PushButton(text="Resume it")
        self.open = PushButton(text="Open it")
        self.refresh_button = PushButton(text="↻")
        self.refresh_button.tooltip = "read the list and the runs' status again"
        buttons = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.resume, self.open, self.refresh_button],
        )
        super().__init__(labels=True, widgets=[self.runs, buttons])
        self.margins = (0, 0, 0, 0)
        self.resume.changed.connect(lambda: self._call(on_resume))
        self.open.changed.connect(lambda: self._call(on_open))
        self.refresh_button.changed.connect(self.refresh)
        self.runs.changed.connect(self._on_selected)
        self._on_selected(self.runs.value)

    def _choices(self, _: Any = None) -> list[tuple[str, RecentRun]]:
        return [(run.label(), run) for run in load()]

    def refresh(self) -> None:
        """Read the list and the runs' status again."""
        self.runs.reset_choices()
        self._on_selected(self.runs.value)

    def _on_selected(self, run: RecentRun | None) -> None:
        self.runs.tooltip = "" if run is None else run.label()
        status = None if run is None else chunkwise.output_status(run.path)
        self.open.enabled = run is not None
        self.resume.enabled = status is not None and not status.finished

    def _call(self, action: Any) -> None:
        if self.runs.value is not None:
            action(self.runs.value)
