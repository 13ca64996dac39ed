"""Choosing where a Zarr store goes, as napari's own Save dialog does for a file.

A Zarr store is a folder, so a file dialog would enter an existing store when its
name is typed, and asks no question before replacing it. `choose_zarr` offers a
default name, takes an existing ``.zarr`` name as the choice (the caller asks before
replacing it), and adds ``.zarr`` to a name typed without it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import zarr
from qtpy.QtWidgets import QFileDialog, QWidget
from zarr.storage import LocalStore

import chunkwise

__all__ = ["choose_zarr", "default_name", "replace_store", "replaceable"]

ZARR_FILTER = "Zarr (*.zarr)"


def default_name(input_name: str, op: Any, *, ome: bool = False) -> str:
    """``<input>-<op>.zarr`` (``.ome.zarr`` for an OME-Zarr image), safe as a name.

    Examples
    --------
    >>> from chunkwise import ops
    >>> default_name("heart ct", ops.gaussian(2))
    'heart ct-gaussian.zarr'
    """
    stem = f"{input_name}-{op.name}".replace("/", "_").replace("\\", "_")
    return stem + (".ome.zarr" if ome else ".zarr")


class _ZarrDialog(QFileDialog):
    """A save dialog that takes an existing ``.zarr`` folder as the chosen name."""

    def accept(self) -> None:
        chosen = self.selectedFiles()
        if chosen and chosen[0].rstrip("/").endswith(".zarr"):
            # QFileDialog would open the folder; a store is a file to the user.
            QFileDialog.done(self, QFileDialog.DialogCode.Accepted)
            return
        super().accept()


def choose_zarr(parent: QWidget | None, title: str, suggested: Path) -> Path | None:
    """Ask for a ``.zarr`` path to write, from ``suggested``; None if cancelled."""
    dialog = _ZarrDialog(parent, title, str(suggested.parent), ZARR_FILTER)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setOption(QFileDialog.Option.DontConfirmOverwrite, True)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.selectFile(suggested.name)
    if not dialog.exec() or not dialog.selectedFiles():
        return None
    path = Path(dialog.selectedFiles()[0])
    return path if path.name.endswith(".zarr") else path.with_name(path.name + ".zarr")


def replaceable(path: Path) -> bool:
    """Whether ``path`` is a Zarr array or group (or an empty folder) to replace."""
    if not path.exists():
        return True
    if path.is_dir() and not any(path.iterdir()):
        return True
    try:
        zarr.open(store=LocalStore(path, read_only=True), mode="r")
    except Exception:  # whatever it is, it is not Zarr
        return False
    return True


def replace_store(source: Path, target: Path) -> None:
    """Copy the store ``source`` to ``target``, replacing ``target`` once complete.

    Raises
    ------
    chunkwise.ChunkwiseError
        If ``target`` holds something other than Zarr.
    """
    if not replaceable(target):
        raise chunkwise.ChunkwiseError(
            f"{target} exists and is not a Zarr store; refusing to replace it "
            "(choose a new name)"
        )
    token = uuid.uuid4().hex[:8]
    partial = target.with_name(f".{target.name}.{token}.partial")
    try:
        shutil.copytree(source, partial)
        if target.exists():
            old = target.with_name(f".{target.name}.{token}.old")
            target.rename(old)
            partial.rename(target)
            shutil.rmtree(old)
        else:
            partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
