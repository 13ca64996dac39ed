"""The widget's status line, and the words it uses for a run's progress.

The line has a fixed width: it wraps at spaces and elides a long path in its middle,
so a long message never widens the dock (a wider dock resizes napari's canvas, a
full redraw). The full text is its tooltip, and a path it names can be copied or
shown in the file manager.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from magicgui.widgets import Container, Label, PushButton
from qtpy.QtCore import QEvent, QObject, Qt, QUrl
from qtpy.QtGui import QDesktopServices, QFontMetrics
from qtpy.QtWidgets import QApplication, QSizePolicy

__all__ = ["StatusLine", "progress_text"]

#: Lines the status shows before it elides; room for a path and a sentence.
LINES = 3
#: Throughput and time left are shown once this much has been measured: the first
#: blocks include the start of the run (opening, first reads) and say little.
MIN_SECONDS, MIN_BLOCKS = 1.0, 2


class StatusLine(Container):
    """A fixed-width, wrapping status with its full text as a tooltip.

    Set `value` for a message; set `path` (or pass it to `show`) for a message
    about a file, which enables "Copy path" and "Show folder".
    """

    def __init__(self) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self._text = ""
        self._path: Path | None = None
        self.line = Label(value="")
        native = self.line.native
        native.setWordWrap(True)
        native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.copy_button = PushButton(text="Copy path", visible=False)
        self.copy_button.tooltip = "copy the path to the clipboard"
        self.reveal_button = PushButton(text="Show folder", visible=False)
        self.reveal_button.tooltip = "open the folder that holds it"
        actions = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.copy_button, self.reveal_button],
        )
        actions.margins = (0, 0, 0, 0)
        self.extend([self.line, actions])
        self.copy_button.changed.connect(self._on_copy)
        self.reveal_button.changed.connect(self._on_reveal)
        #: Opens a folder in the file manager; tests replace it.
        self.reveal = _reveal
        self._resized = _OnResize(self._render)
        native.installEventFilter(self._resized)

    @property
    def value(self) -> str:  # type: ignore[override]
        """The full text of the status."""
        return self._text

    @value.setter
    def value(self, text: str) -> None:
        self._text = str(text)
        self.line.native.setToolTip(self._text)
        self._render()

    @property
    def path(self) -> Path | None:
        """The file the status names, for "Copy path" and "Show folder"."""
        return self._path

    @path.setter
    def path(self, path: Path | str | None) -> None:
        self._path = None if path is None else Path(path)
        self.copy_button.visible = self.reveal_button.visible = path is not None

    def show(self, text: str, path: Path | str | None = None) -> None:
        """Show ``text``, about ``path`` if given."""
        self.value = text
        self.path = path

    @property
    def shown(self) -> str:
        """The text as displayed: long words elided to the line's width."""
        return self.line.native.text()

    def _render(self) -> None:
        native = self.line.native
        metrics = QFontMetrics(native.font())
        width = max(native.width(), 80)
        words = [
            metrics.elidedText(word, Qt.TextElideMode.ElideMiddle, width)
            for word in self._text.split(" ")
        ]
        native.setText(" ".join(words))
        # Room for the lines the text takes (at most LINES): a label left to the
        # form's layout gets one line's height, or a sliver, whatever it holds.
        line = metrics.lineSpacing()
        lines = min(LINES, max(1, native.heightForWidth(width) // line))
        native.setMinimumHeight(lines * line + 4)
        native.setMaximumHeight(LINES * line + 4)

    def _on_copy(self) -> None:
        if self._path is not None:
            QApplication.clipboard().setText(str(self._path))

    def _on_reveal(self) -> None:
        if self._path is not None:
            self.reveal(self._path.parent if not self._path.is_dir() else self._path)


class _OnResize(QObject):
    def __init__(self, callback: Any) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._callback()
        return False


def _reveal(folder: Path) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _bytes_per_second(rate: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if rate >= size:
            return f"{rate / size:.3g} {unit}"
    return f"{rate:.3g} B/s"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def progress_text(
    done: int, total: int, computed: int, nbytes: int, seconds: float
) -> str:
    """The status of a running run.

    Parameters
    ----------
    done, total : int
        Blocks complete (resumed ones included) and in all.
    computed : int
        Blocks this run computed, over ``seconds``.
    nbytes : int
        Output bytes those blocks wrote.
    seconds : float
        Time since this run started computing.

    Returns
    -------
    str
        ``done/total blocks``, with the measured throughput and time left once
        enough has been measured to mean something.

    Examples
    --------
    >>> progress_text(3, 10, 3, 30_000_000, 2.0)
    '3/10 blocks · 15 MB/s · about 5 s left'
    >>> progress_text(1, 10, 1, 10_000_000, 0.2)
    '1/10 blocks'
    """
    text = f"{done}/{total} blocks"
    if computed < MIN_BLOCKS or seconds < MIN_SECONDS:
        return text
    left = (total - done) * seconds / computed
    return (
        f"{text} · {_bytes_per_second(nbytes / seconds)} · about {_duration(left)} left"
    )
