"""Scratch outputs: a run without an output path writes one, to save later or drop.

Each scratch store lives alone in a ``chunkwise-*`` folder made for it under the
scratch location (the system's temporary folder unless the user picks another), so
dropping it removes that folder and nothing else. A store the user named or saved
is never a scratch store: saving copies the scratch store elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "PREFIX",
    "ScratchOutputs",
    "disk_size",
    "exit_question",
    "human_size",
    "is_scratch",
    "stores_shown",
]

#: The folder made for each scratch store starts with this.
PREFIX = "chunkwise-"
#: Written in each scratch folder when it is made: the proof that it is ours.
MARKER = ".chunkwise-scratch"


def is_scratch(path: Path) -> bool:
    """Whether ``path`` is a store alone in a scratch folder (ours to delete).

    By the marker written when the folder was made, not by its name: a user's
    ``chunkwise-study/out.zarr`` is never a scratch store, and nothing else of theirs
    may sit in the folder that would be deleted with it.
    """
    folder = Path(path).parent
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    return (
        folder.name.startswith(PREFIX)
        and (folder / MARKER).is_file()
        and names <= {MARKER, Path(path).name}
    )


def disk_size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it is gone)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def human_size(n: float) -> str:
    """``n`` bytes for people: 1.2 GB, 340 MB, 12 kB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "kB") else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


class ScratchOutputs:
    """The scratch stores one widget made and has not deleted yet."""

    def __init__(self) -> None:
        self._made: list[Path] = []
        #: Where the user saved copies of them.
        self.copies: dict[Path, Path] = {}

    def new(self, root: Path | str | None, name: str) -> Path:
        """A path for a new scratch store called ``name`` under ``root``.

        ``root`` None or empty: the system's temporary folder; made if missing.
        """
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=PREFIX, dir=str(root) if root else None)
        (Path(folder) / MARKER).touch()
        path = Path(folder) / name
        self._made.append(path)
        return path

    def adopt(self, path: Path) -> None:
        """Count a scratch store made earlier (a resumed one) as this widget's."""
        if is_scratch(path) and path not in self._made:
            self._made.append(path)

    def saved(self, path: Path, copy: Path) -> None:
        """The user saved a copy of the scratch store ``path`` at ``copy``."""
        self.copies[path] = copy

    def unsaved(self) -> list[Path]:
        """The scratch stores still on disk, oldest first."""
        self._made = [path for path in self._made if path.parent.exists()]
        return list(self._made)

    def drop(self, path: Path, *, background: bool = False) -> None:
        """Delete the scratch store ``path`` and its folder (in a thread if asked)."""
        if path in self._made:
            self._made.remove(path)
        if not is_scratch(path):
            return
        if background:
            # A big store takes a while to delete: not on napari's event loop. Not a
            # daemon thread, so that Python finishes it before it exits.
            threading.Thread(
                target=_delete, args=(path,), name="chunkwise-drop-scratch"
            ).start()
        else:
            _delete(path)

    def replace(
        self, keep: Path, shown: Iterable[Path], *, background: bool = False
    ) -> list[Path]:
        """Delete every scratch store but ``keep`` and those ``shown``; say which."""
        spare = {keep, *shown}
        dropped = [path for path in self.unsaved() if path not in spare]
        for path in dropped:
            self.drop(path, background=background)
        return dropped


def _delete(path: Path) -> None:
    # The store first, its folder's marker last: a deletion cut short leaves a
    # folder that is still proven scratch, to be deleted later.
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(path.parent, ignore_errors=True)


def exit_question(paths: list[Path], copies: dict[Path, Path]) -> str:
    """The question asked on exit about scratch stores (``copies``: saved copies)."""
    lines = [
        f"{path} ({human_size(disk_size(path))})"
        + (f", saved as {copies[path]}" if path in copies else "")
        for path in paths
    ]
    count = "this scratch result" if len(paths) == 1 else "these scratch results"
    return f"Delete {count}?\n\n" + "\n".join(lines)


def stores_shown(layers: Iterable[Any]) -> set[Path]:
    """The local stores whose arrays the ``layers`` show."""
    shown = set()
    for layer in layers:
        data = layer.data
        arrays = data if getattr(layer, "multiscale", False) else [data]
        for array in arrays:
            array = getattr(array, "array", array)  # a LiveOutput shows its array
            root = getattr(
                getattr(getattr(array, "store_path", None), "store", None), "root", None
            )
            if root is not None:
                shown.add(Path(root))
    return shown
