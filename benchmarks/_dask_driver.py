"""One dask-backend run as a driver of its own; prints one JSON line.

``python benchmarks/_dask_driver.py INPUT OUTPUT SCHEDULER``: copies INPUT into
OUTPUT in blocks of one 4^3 chunk, on the cluster whose scheduler is at the address
SCHEDULER. dask_backend.py starts it through `_launcher.py`, which measures the peak
RSS of this process alone (the scheduler and the workers are other processes). The
JSON adds the RSS sampled here at each stage and the time per block.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil

import chunkwise
from chunkwise import ops

TINY = (4, 4, 4)
SAMPLE_S = 0.02


class Sampler(threading.Thread):
    """The RSS of this process, every `SAMPLE_S` seconds: its largest value."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process()
        self._halt = threading.Event()
        self.peak = self.rss()

    def rss(self) -> int:
        return self._process.memory_info().rss

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, self.rss())


def main(src: str, dst: str, address: str) -> dict:
    mb = 2**-20
    sampler = Sampler()
    imported = sampler.rss()
    sampler.start()
    began = time.perf_counter()
    run = chunkwise.iter_process(
        src, ops.copy(), dst, chunks=TINY, block=TINY, backend="dask", scheduler=address
    )
    started, seconds, first, last = sampler.rss(), 0.0, None, None
    for record in run:
        last = time.perf_counter()
        first = first or last
        seconds += record.seconds
    wall = time.perf_counter() - began
    peak = sampler.stop()
    blocks = len(run.plan)
    return {
        "blocks": blocks,
        "run_wall_s": wall,
        "job_s": seconds,
        "steady_ms": (last - first) / max(1, blocks - 1) * 1e3,
        "rss_imported_mb": imported * mb,
        "rss_started_mb": started * mb,
        "rss_sampled_peak_mb": peak * mb,
        "rss_end_mb": sampler.rss() * mb,
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])), flush=True)
