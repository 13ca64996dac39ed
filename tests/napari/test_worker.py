"""RunStream: records reach the main thread; the view is read only when it changed."""

from __future__ import annotations

import queue

import numpy as np
import zarr

from chunkwise import BlockDone
from chunkwise._geometry import Box
from chunkwise._napari._live import LiveOutput
from chunkwise._napari._worker import RunStream

SHAPE = (64, 32, 32)


class _GatedRun:
    """Stands in for a `chunkwise.Run` whose blocks land when the test says so."""

    def __init__(self, output: zarr.Array) -> None:
        self.output = output
        self._landed: queue.Queue[BlockDone | None] = queue.Queue()
        self._done = 0

    def land(self, z: int, value: int) -> None:
        box = Box((z, 0, 0), (z + 16, *SHAPE[1:]))
        self.output[box.slices] = value
        self._done += 1
        self._landed.put(BlockDone(self._done - 1, box, 0.0, self._done, 4))

    def finish(self) -> None:
        self._landed.put(None)

    def cancel(self) -> None:
        self.finish()

    def __iter__(self) -> _GatedRun:
        return self

    def __next__(self) -> BlockDone:
        record = self._landed.get(timeout=60)
        if record is None:
            raise StopIteration
        return record


def test_only_blocks_in_the_view_refresh_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    output = zarr.create_array(
        zarr.storage.MemoryStore(), shape=SHAPE, chunks=(16, 16, 16), dtype="u1"
    )
    layer = viewer.add_image(LiveOutput(output), contrast_limits=(0, 255))
    viewer.dims.set_current_step(0, 40)  # the plane z=40, in the block 32:48
    run = _GatedRun(output)
    progress, ended = [], []
    stream = RunStream(run, layer, progress.append, ended.append)
    stream.start()

    run.land(0, 1)  # off the view: reported, never read
    qtbot.waitUntil(lambda: bool(progress) and progress[-1].done == 1, timeout=10_000)
    assert (stream.reads, stream.refreshes) == (0, 0)

    run.land(32, 7)  # in the view: read off the main thread, then shown
    qtbot.waitUntil(lambda: stream.refreshes == 1, timeout=10_000)
    assert stream.reads == 1
    # What napari shows (its slice of the layer) is the new block.
    assert (np.asarray(layer._slice.image.raw) == 7).all()

    run.land(48, 9)
    run.finish()
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert ended == [None]
    assert progress[-1].done == 3
    assert stream.reads == 1
    assert layer.data is output  # the layer holds the output itself again
    viewer.dims.set_current_step(0, 50)
    assert (np.asarray(layer._slice.image.raw) == 9).all()
