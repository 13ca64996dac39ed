"""The dask.distributed backend against the threading backend: issue 13's targets.

Command (from the repository root)::

    .venv/bin/python benchmarks/dask_backend.py           # full run
    .venv/bin/python benchmarks/dask_backend.py --quick   # smoke run, 1-2 minutes

``--parts wall,overhead`` runs a subset; ``--quick`` runs 64^3 in 16^3 chunks, 2
rounds, 1000 blocks for the overhead and 100,1000 for the memory, with results in
benchmarks/.data/quick/quick-results/; any option given explicitly wins.

Not named ``dask.py``: every script in benchmarks/ has this folder first on
``sys.path``, so a ``dask.py`` here would be imported as dask itself by run.py's
tools (``_worker.py``) and by the cluster's worker processes.

One ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` on
127.0.0.1 is started before anything is timed; its connected Client is passed as
``scheduler=``. Three measurements, each against ``backend="threading",
n_jobs=2`` on the same plan:

1. **wall** (target: dask <= 1.25x threading): Gaussian sigma=2 on the 512^3 uint8
   CT-like volume of run.py's job (a) (64^3 zstd chunks, output 64^3 chunks),
   ``--rounds`` rounds (default 5) of threading, dask on the running cluster, and
   ``scheduler="local"`` (a cluster started and closed by the run, timed with it),
   in rotated order. Every output is compared with the first threading output bit
   for bit, and that one once with scipy.ndimage.gaussian_filter on the whole array.
2. **overhead per block** (target: <= 5 ms): ``ops.copy()`` of a volume in 4^3
   chunks, one chunk per block (``--overhead-blocks``, default 20,480), on both
   backends, ``--overhead-rounds`` rounds (default 2) alternating which goes first.
   Besides, each executor alone runs ``--floor-tasks`` (default 5,000) tasks that
   do nothing: the floor of its per-task cost, without chunkwise's block work.
3. **driver memory** (target: flat from 10^3 to 10^5 blocks): the same copy with
   ``--sizes`` blocks (default 1000,10000,100000), each run by a fresh driver
   process (`_dask_driver.py`) connected to the cluster by its address, so that
   neither the scheduler nor the workers are in it; its peak RSS is taken by
   `_launcher.py` (``ru_maxrss`` of that process alone).

The load average (1, 5, 15 min) is recorded before and after every measurement:
the machine may be shared. Results: ``--results`` (default benchmarks/results/)
dask.md and dask.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path
from statistics import median

import numpy as np
import psutil
import zarr
from _harness import Launcher, ensure_input, warm
from _jobs import WORKERS, Input
from filters import _cpu_model, difference
from run import _meta

import chunkwise
from chunkwise import ops
from chunkwise._executors import open_executor

HERE = Path(__file__).resolve().parent
SIGMA = 2.0
TINY = (4, 4, 4)
VARIANTS = ("threading", "dask", "dask-local")
WALL_TARGET, OVERHEAD_TARGET_MS = 1.25, 5.0
#: Driver growth judged flat below this many bytes per added block.
FLAT_BYTES = 100
MB = 2**-20


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _worker_cpu(client) -> float:
    """User + system CPU seconds of the cluster's worker processes so far."""

    def cpu() -> float:
        times = psutil.Process().cpu_times()
        return times.user + times.system

    return sum(client.run(cpu).values())


def start_cluster():
    import distributed

    with warnings.catch_warnings():
        # Without a dashboard distributed still serves HTTP, on 8787 if free.
        warnings.filterwarnings("ignore", "Port 8787 is already in use")
        cluster = distributed.LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    return cluster, distributed.Client(cluster)


def tiny_input(blocks: int) -> Input:
    """A volume of ``blocks`` 4^3 chunks, as near a cube as ``blocks`` factors."""
    a = max(d for d in range(1, round(blocks ** (1 / 3)) + 1) if blocks % d == 0)
    rest = blocks // a
    b = max(d for d in range(1, int(rest**0.5) + 1) if rest % d == 0)
    counts = (a, b, rest // b)
    return Input(f"tiny{blocks}", tuple(4 * n for n in counts), TINY, "uint8")


def _same(src: Path, dst: Path) -> str:
    """Whether a copy equals its input, voxel for voxel."""
    source, copy = zarr.open_array(src, mode="r"), zarr.open_array(dst, mode="r")
    return "bit-identical" if np.array_equal(source[:], copy[:]) else "NO"


# -- 1. wall time: Gaussian on 512^3 ---------------------------------------------


def gaussian_run(variant: str, src: Path, dst: Path, client) -> dict:
    """One timed run of ``variant``; CPU of this process and of the workers."""
    shutil.rmtree(dst, ignore_errors=True)
    warm(src)
    backend = "threading" if variant == "threading" else "dask"
    scheduler = {"threading": None, "dask": client, "dask-local": "local"}[variant]
    load_before, workers_before = _load(), _worker_cpu(client)
    cpu_before, children_before = _cpu(), _cpu(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    chunkwise.process(
        src, ops.gaussian(SIGMA), dst, n_jobs=WORKERS, backend=backend,
        scheduler=scheduler,
    )  # fmt: skip
    wall = time.perf_counter() - began
    workers = _worker_cpu(client) - workers_before
    if variant == "dask-local":
        # Its workers were this process's children, ended with the run.
        workers = _cpu(resource.RUSAGE_CHILDREN) - children_before
    return {
        "variant": variant,
        "wall_s": wall,
        "cpu_s": _cpu() - cpu_before,
        "worker_cpu_s": workers,
        "load_before": load_before,
        "load_after": _load(),
    }


def scipy_check(src: Path, reference: Path) -> str:
    import scipy.ndimage as ndi

    expected = ndi.gaussian_filter(zarr.open_array(src, mode="r")[:], SIGMA)
    got = zarr.open_array(reference, mode="r")[:]
    if got.dtype != expected.dtype or not np.array_equal(got, expected):
        return f"NO: {int((got != expected).sum())} voxels differ"
    return "bit-identical"


def warm_up(scratch: Path, client) -> None:
    """An untimed small Gaussian on each backend: scipy imported everywhere."""
    small = np.zeros((32, 32, 32), np.uint8)
    for backend, scheduler in (("threading", None), ("dask", client)):
        dst = scratch / f"warm-{backend}.zarr"
        chunkwise.process(
            small, ops.gaussian(SIGMA), dst, n_jobs=WORKERS, backend=backend,
            scheduler=scheduler,
        )  # fmt: skip
        shutil.rmtree(dst)


def measure_wall(src: Path, scratch: Path, client, rounds: int) -> dict:
    warm_up(scratch, client)
    runs: list[dict] = []
    reference = scratch / "threading-reference.zarr"
    for round_ in range(rounds):
        shift = round_ % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            dst = scratch / f"{variant}.zarr"
            record = gaussian_run(variant, src, dst, client)
            record["round"] = round_
            if variant == "threading" and not reference.exists():
                dst.rename(reference)
                record["exact"] = "(the reference)"
            else:
                record["exact"] = difference(reference, dst)
            runs.append(record)
            print(
                f"  round {round_} {variant:10s} {record['wall_s']:6.2f} s  "
                f"load {record['load_before']} -> {record['load_after']}  "
                f"{record['exact']}",
                flush=True,
            )
    plan = chunkwise.plan(str(src), ops.gaussian(SIGMA), n_jobs=WORKERS)
    return {
        "runs": runs,
        "scipy": scipy_check(src, reference),
        "blocks": len(plan),
        "block": list(plan.block(0).box.stop),
    }


# -- 2. overhead per block: a copy in 4^3 blocks ---------------------------------


def copy_run(backend: str, src: Path, dst: Path, client) -> dict:
    """A copy in tiny blocks; the jobs' own time from the progress records."""
    shutil.rmtree(dst, ignore_errors=True)
    warm(src)
    load_before, workers_before = _load(), _worker_cpu(client)
    cpu_before, began = _cpu(), time.perf_counter()
    run = chunkwise.iter_process(
        src, ops.copy(), dst, chunks=TINY, block=TINY, n_jobs=WORKERS,
        backend=backend, scheduler=client if backend == "dask" else None,
    )  # fmt: skip
    seconds, first, last = 0.0, None, None
    for record in run:
        last = time.perf_counter()
        first = first or last
        seconds += record.seconds
    wall = time.perf_counter() - began
    blocks = len(run.plan)
    return {
        "backend": backend,
        "blocks": blocks,
        "wall_s": wall,
        "job_s": seconds,
        "steady_ms": (last - first) / max(1, blocks - 1) * 1e3,
        "cpu_s": _cpu() - cpu_before,
        "worker_cpu_s": _worker_cpu(client) - workers_before,
        "load_before": load_before,
        "load_after": _load(),
        "exact": _same(src, dst),
    }


def _nothing(index: int) -> int:
    return index


def floor_run(backend: str, tasks: int, client) -> dict:
    """``tasks`` tasks that do nothing, through chunkwise's executor alone."""
    executor = open_executor(backend, WORKERS, client if backend == "dask" else None)
    load_before, workers_before = _load(), _worker_cpu(client)
    cpu_before, began = _cpu(), time.perf_counter()
    try:
        results = executor.map_unordered(_nothing, ((i,) for i in range(tasks)))
        count = sum(1 for _ in results)
    finally:
        executor.close()
    wall = time.perf_counter() - began
    assert count == tasks
    return {
        "backend": backend,
        "tasks": tasks,
        "wall_s": wall,
        "cpu_s": _cpu() - cpu_before,
        "worker_cpu_s": _worker_cpu(client) - workers_before,
        "load_before": load_before,
        "load_after": _load(),
    }


def measure_overhead(
    src: Path, scratch: Path, client, rounds: int, floor_tasks: int
) -> dict:
    runs = []
    for round_ in range(rounds):
        order = ("threading", "dask") if round_ % 2 == 0 else ("dask", "threading")
        for backend in order:
            record = copy_run(backend, src, scratch / f"copy-{backend}.zarr", client)
            record["round"] = round_
            runs.append(record)
            print(
                f"  round {round_} {backend:10s} {record['wall_s']:7.2f} s, "
                f"{record['wall_s'] / record['blocks'] * 1e3:.2f} ms/block  load "
                f"{record['load_before']} -> {record['load_after']}  "
                f"{record['exact']}",
                flush=True,
            )
    floors = [floor_run(b, floor_tasks, client) for b in ("threading", "dask")]
    for record in floors:
        print(
            f"  floor {record['backend']:10s} {record['wall_s']:7.2f} s, "
            f"{record['wall_s'] / record['tasks'] * 1e3:.2f} ms/task  load "
            f"{record['load_before']} -> {record['load_after']}",
            flush=True,
        )
    return {"runs": runs, "floors": floors}


# -- 3. driver memory: fresh driver processes -------------------------------------


def _rss_mb(client) -> tuple[float, float]:
    """RSS of this process (it holds the scheduler) and of all the workers."""
    here = psutil.Process().memory_info().rss * MB
    workers = client.run(lambda: psutil.Process().memory_info().rss)
    return here, sum(workers.values()) * MB


def measure_memory(sources: dict[int, Path], scratch: Path, client) -> list[dict]:
    address = client.scheduler.address
    records = []
    with Launcher() as launcher:
        for blocks, src in sources.items():
            dst = scratch / f"memory-{blocks}.zarr"
            shutil.rmtree(dst, ignore_errors=True)
            warm(src)
            load_before = _load()
            command = [
                sys.executable, str(HERE / "_dask_driver.py"), str(src), str(dst),
                address,
            ]  # fmt: skip
            record = launcher.measure(command)
            record |= {"load_before": load_before, "load_after": _load()}
            record["scheduler_mb"], record["workers_mb"] = _rss_mb(client)
            record["exact"] = _same(src, dst)
            shutil.rmtree(dst)
            records.append(record)
            print(
                f"  {blocks:7d} blocks: driver peak {record['peak_rss_mb']:.0f} MB, "
                f"{record['run_wall_s']:.1f} s  load {load_before} -> "
                f"{record['load_after']}  {record['exact']}",
                flush=True,
            )
    return records


# -- the report -------------------------------------------------------------------


def _range(values: list[float], unit: str = "s") -> str:
    return f"{median(values):.2f} {unit} ({min(values):.2f}-{max(values):.2f})"


def _verdict(met: bool) -> str:
    return "**MET**" if met else "**MISSED**"


def wall_section(wall: dict) -> list[str]:
    runs = wall["runs"]
    walls = {v: [r["wall_s"] for r in runs if r["variant"] == v] for v in VARIANTS}
    ratio = median(walls["dask"]) / median(walls["threading"])
    ratios = [
        d["wall_s"] / t["wall_s"]
        for d in runs
        for t in runs
        if d["variant"] == "dask" and t["variant"] == "threading"
        and d["round"] == t["round"]
    ]  # fmt: skip
    lines = [
        f"## 1. Wall time: Gaussian sigma={SIGMA:g} on 512^3 uint8",
        "",
        f"Plan: {wall['blocks']} blocks of "
        f"{'x'.join(map(str, wall['block']))} (the same for every variant). "
        f"The first threading output equals scipy.ndimage.gaussian_filter on the "
        f"whole array: {wall['scipy']}.",
        "",
        "| round | variant | wall s | this process CPU s | workers CPU s "
        "| load before | load after | equals threading |",
        "| ---: | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['variant']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['worker_cpu_s']:.2f} | {_loads(r['load_before'])} "
            f"| {_loads(r['load_after'])} | {r['exact']} |"
        )
    lines += [
        "",
        "| variant | wall, median (range) |",
        "| --- | --- |",
        *(f"| {v} | {_range(walls[v])} |" for v in VARIANTS),
        "",
        f"dask / threading, medians: **{ratio:.2f}x** (per round: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}); target <= {WALL_TARGET}x: "
        f"{_verdict(ratio <= WALL_TARGET)}. dask-local (cluster start and close "
        "included) is reported, not judged.",
        "",
    ]
    return lines


def _loads(load: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def overhead_section(overhead: dict) -> list[str]:
    runs, floors = overhead["runs"], overhead["floors"]
    blocks = runs[0]["blocks"]
    lines = [
        f"## 2. Scheduling overhead per block: copy of {blocks} 4^3 blocks",
        "",
        "| round | backend | wall s | ms per block | steady ms per block "
        "| jobs' own s | this process CPU s | workers CPU s | load before "
        "| load after | output equals input |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['backend']} | {r['wall_s']:.1f} "
            f"| {r['wall_s'] / r['blocks'] * 1e3:.2f} | {r['steady_ms']:.2f} "
            f"| {r['job_s']:.1f} | {r['cpu_s']:.1f} | {r['worker_cpu_s']:.1f} "
            f"| {_loads(r['load_before'])} | {_loads(r['load_after'])} "
            f"| {r['exact']} |"
        )
    lines += [
        "",
        "Executors alone, tasks that do nothing:",
        "",
        "| backend | tasks | wall s | ms per task | this process CPU ms per task "
        "| workers CPU ms per task | load before | load after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        *(
            f"| {f['backend']} | {f['tasks']} | {f['wall_s']:.1f} "
            f"| {f['wall_s'] / f['tasks'] * 1e3:.2f} "
            f"| {f['cpu_s'] / f['tasks'] * 1e3:.2f} "
            f"| {f['worker_cpu_s'] / f['tasks'] * 1e3:.2f} "
            f"| {_loads(f['load_before'])} | {_loads(f['load_after'])} |"
            for f in floors
        ),
        "",
    ]
    dask = [r for r in runs if r["backend"] == "dask"]
    threads = [r for r in runs if r["backend"] == "threading"]
    # (a) the wall time per block that the jobs' own work, spread over the
    # workers, does not account for; (b) the same plan's per-block wall time
    # on dask minus on threading.
    a = median((r["wall_s"] - r["job_s"] / WORKERS) / blocks * 1e3 for r in dask)
    gap = median(r["wall_s"] for r in dask) - median(r["wall_s"] for r in threads)
    b = gap / blocks * 1e3
    lines += [
        f"(a) (dask wall - jobs' own seconds / {WORKERS} workers) / blocks: "
        f"**{a:.2f} ms** (median over rounds).",
        f"(b) (dask wall - threading wall) / blocks, medians: **{b:.2f} ms**.",
        f"Target <= {OVERHEAD_TARGET_MS:g} ms: "
        f"(a) {_verdict(a <= OVERHEAD_TARGET_MS)}, "
        f"(b) {_verdict(b <= OVERHEAD_TARGET_MS)}.",
        "",
    ]
    return lines


def memory_section(memory: list[dict]) -> list[str]:
    lines = [
        "## 3. Driver memory: copy in 4^3 blocks, a fresh driver process per size",
        "",
        "| blocks | driver peak RSS MB | after imports | run started | sampled peak "
        "| at the end | wall s | steady ms per block | benchmark process "
        "(scheduler) MB | workers MB | load before | load after "
        "| output equals input |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- | --- | --- |",
    ]
    for r in memory:
        lines.append(
            f"| {r['blocks']} | {r['peak_rss_mb']:.1f} | {r['rss_imported_mb']:.1f} "
            f"| {r['rss_started_mb']:.1f} | {r['rss_sampled_peak_mb']:.1f} "
            f"| {r['rss_end_mb']:.1f} | {r['run_wall_s']:.1f} | {r['steady_ms']:.2f} "
            f"| {r['scheduler_mb']:.0f} | {r['workers_mb']:.0f} "
            f"| {_loads(r['load_before'])} | {_loads(r['load_after'])} "
            f"| {r['exact']} |"
        )
    first, last = memory[0], memory[-1]
    growth = last["peak_rss_mb"] - first["peak_rss_mb"]
    per_block = growth / MB / max(1, last["blocks"] - first["blocks"])
    during = [r["peak_rss_mb"] - r["rss_started_mb"] for r in memory]
    lines += [
        "",
        f"Driver peak RSS from {first['blocks']} to {last['blocks']} blocks: "
        f"{first['peak_rss_mb']:.1f} -> {last['peak_rss_mb']:.1f} MB "
        f"(**{growth:+.1f} MB**, {growth / first['peak_rss_mb']:+.1%}, "
        f"{per_block:.0f} bytes per added block). Growth while the blocks ran (peak "
        "minus the RSS once the run had started), per size: "
        + ", ".join(f"{d:+.1f} MB" for d in during)
        + ".",
        f"Flat means here: under {FLAT_BYTES} bytes per added block (a driver "
        f"keeping even a small record per block would exceed it): "
        f"{_verdict(per_block < FLAT_BYTES)}.",
        "",
    ]
    return lines


def markdown(results: dict) -> str:
    meta = results["meta"]
    out = [
        "# The dask.distributed backend against threading (issue 13)",
        "",
        f"Command: `{meta['command']}`, {meta['date']}, "
        f"total {results['total_s']:.0f} s.",
        f"Machine: {meta['cpus']} CPUs ({results['cpu']}), {meta['platform']}, "
        f"Python {meta['python']}. Cluster: LocalCluster, {WORKERS} worker "
        "processes of 1 thread, on 127.0.0.1, started once before anything was "
        "timed; threading runs with n_jobs=2. Load average (1, 5, 15 min) at the "
        f"start: {_loads(results['load'][0])}; at the end: "
        f"{_loads(results['load'][1])}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
    ]
    if "wall" in results:
        out += wall_section(results["wall"])
    if "overhead" in results:
        out += overhead_section(results["overhead"])
    if "memory" in results:
        out += memory_section(results["memory"])
    return "\n".join(out) + "\n"


# -- the command ------------------------------------------------------------------


#: Option -> (full run, --quick).
DEFAULTS = {
    "rounds": ("5", "2"),
    "overhead_blocks": ("20480", "1000"),
    "overhead_rounds": ("2", "1"),
    "floor_tasks": ("5000", "500"),
    "sizes": ("1000,10000,100000", "100,1000"),
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--parts", default="wall,overhead,memory")
    for name in DEFAULTS:
        parser.add_argument(f"--{name.replace('_', '-')}", default=None)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.data = args.data / "quick"
    for name, values in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, values[args.quick])
    for name in ("rounds", "overhead_blocks", "overhead_rounds", "floor_tasks"):
        setattr(args, name, int(getattr(args, name)))
    if args.results is None:
        args.results = args.data / "quick-results" if args.quick else HERE / "results"
    args.parts = set(args.parts.split(","))
    args.sizes = [int(n) for n in args.sizes.split(",")]
    return args


def _versions(meta: dict) -> None:
    for name in ("distributed", "psutil"):
        meta["versions"][name] = importlib.metadata.version(name)
    meta["versions"].pop("dask-image", None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    start, load_start = time.perf_counter(), _load()
    args.data.mkdir(parents=True, exist_ok=True)
    scratch = args.data / "out-dask"
    shutil.rmtree(scratch, ignore_errors=True)  # a stale reference would be trusted
    scratch.mkdir(parents=True)
    n, c = (64, 16) if args.quick else (512, 64)
    parts = args.parts
    big = ensure_input(args.data, Input("u8", (n,) * 3, (c,) * 3, "uint8"))
    counts = [*args.sizes] if "memory" in parts else []
    if "overhead" in parts:
        counts.append(args.overhead_blocks)
    sources = {b: ensure_input(args.data, tiny_input(b)) for b in counts}
    meta = _meta(argv)
    meta["command"] = " ".join(["python benchmarks/dask_backend.py", *argv])
    _versions(meta)
    results: dict = {"meta": meta, "cpu": _cpu_model()}
    cluster, client = start_cluster()
    try:
        if "wall" in parts:
            print("1. wall time, Gaussian", flush=True)
            results["wall"] = measure_wall(big, scratch, client, args.rounds)
        if "overhead" in parts:
            print("2. overhead per block", flush=True)
            results["overhead"] = measure_overhead(
                sources[args.overhead_blocks],
                scratch,
                client,
                args.overhead_rounds,
                args.floor_tasks,
            )
        if "memory" in parts:
            print("3. driver memory", flush=True)
            results["memory"] = measure_memory(
                {b: sources[b] for b in args.sizes}, scratch, client
            )
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    results["total_s"] = time.perf_counter() - start
    results["load"] = (load_start, _load())
    text = markdown(results)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "dask.md").write_text(text)
    (args.results / "dask.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    print(f"wrote {args.results / 'dask.md'} and dask.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
