"""A tqdm progress bar over a run's records: chunks, throughput and ETA."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from chunkwise._geometry import ceil_div

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chunkwise._run import BlockDone, Run

__all__ = ["progress_bar"]


class _Bar:
    def __init__(self, run: Run) -> None:
        plan = run.plan
        self._chunks = plan.chunks
        self._voxel_bytes = plan.dtype.itemsize
        total = plan.n_chunks
        initial = round(total * run.done_at_start / max(len(plan), 1))
        self._tqdm = tqdm(
            total=total,
            initial=initial,
            unit="chunk",
            desc=plan.op.name,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._bytes = 0

    def advance(self, record: BlockDone) -> None:
        """Count the chunks of a finished block."""
        box = record.box
        chunks = math.prod(
            ceil_div(b, c) - a // c
            for a, b, c in zip(box.start, box.stop, self._chunks, strict=True)
        )
        self._bytes += box.size * self._voxel_bytes
        elapsed = self._tqdm.format_dict["elapsed"] or 1e-9
        self._tqdm.set_postfix_str(
            f"{self._bytes / elapsed / 1e6:.0f} MB/s", refresh=False
        )
        self._tqdm.update(chunks)


@contextlib.contextmanager
def progress_bar(run: Run) -> Iterator[_Bar]:
    """A progress bar for ``run``, closed on exit."""
    bar = _Bar(run)
    try:
        yield bar
    finally:
        bar._tqdm.close()
