"""The output layer's data while a run streams: the view is read off the main thread.

napari reads the plane on screen from ``layer.data`` on the main thread at every
refresh. For a run's output that read decodes every chunk under the plane while the
run's jobs hold the cores: 30-80 ms per refresh of a 256² plane of 64³ zstd chunks on
two cores, against 14 ms when idle. So while a run streams, the layer shows a
`LiveOutput`: the stream reads the view napari last asked for in a worker thread,
hands the copy over with `keep`, and refreshes; napari's read then returns the copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import zarr

    from chunkwise._geometry import Box

__all__ = ["LiveOutput"]

Key = tuple[Any, ...]


class LiveOutput:
    """``array`` as napari reads it, serving one view from a copy read ahead.

    Parameters
    ----------
    array : zarr.Array
        The run's output, which keeps changing until the run ends.
    empty : bool
        Nothing is written yet (a new run): reads are the fill value, without
        touching the store, until `written`. napari slices a new layer twice while
        adding it, on the main thread: 23 ms of reading chunks that do not exist.
    """

    def __init__(self, array: zarr.Array, *, empty: bool = False) -> None:
        self.array = array
        self._fill = (
            np.broadcast_to(np.asarray(array.fill_value, array.dtype), array.shape)
            if empty
            else None
        )
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.size = array.size
        #: The last view napari read: one entry per axis, slices on the axes shown.
        self.view: Key | None = None
        self._kept: tuple[Key, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        kept = self._kept
        if kept is not None and _plain(key) and key == kept[0]:
            return kept[1]
        if _is_view(key, self.ndim):
            self.view = key
        if self._fill is not None:
            return self._fill[key]
        return self.array[key]

    def written(self) -> None:
        """Blocks have landed: read them from now on."""
        self._fill = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.array[...], dtype=dtype)

    def read(self, key: Key) -> tuple[Key, np.ndarray]:
        """Read ``key`` from the array (call it off the main thread)."""
        return key, np.asarray(self.array[key])

    def keep(self, key: Key, data: np.ndarray) -> None:
        """Serve ``data`` for ``key`` from now on, until `forget`."""
        self._kept = (key, data)

    def forget(self) -> None:
        """Serve every read from the array again."""
        self._kept = None

    def shows(self, box: Box) -> bool:
        """Whether ``box`` (output voxels) overlaps the view napari last read."""
        if self.view is None:
            return False
        for entry, size, start, stop in zip(
            self.view, self.shape, box.start, box.stop, strict=True
        ):
            if isinstance(entry, slice):
                low, high, _ = entry.indices(size)
            else:
                low = range(size)[entry]
                high = low + 1
            if high <= start or low >= stop:
                return False
        return True


def _plain(key: Any) -> bool:
    # Arrays in a key would make `==` elementwise; napari's views never hold them.
    return isinstance(key, tuple) and all(
        isinstance(entry, slice | int | np.integer) for entry in key
    )


def _is_view(key: Any, ndim: int) -> bool:
    # napari slices with one entry per axis, slices on the 2 or 3 axes it shows; a
    # value under the cursor is all integers and says nothing about the view.
    return (
        _plain(key)
        and len(key) == ndim
        and sum(isinstance(entry, slice) for entry in key) >= 2
    )
