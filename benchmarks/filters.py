"""Median, rank and a 7^3 convolution on 256^3: chunkwise beside dask-image (issue 12).

Command (from the repository root)::

    .venv/bin/python benchmarks/filters.py            # full run, a few minutes
    .venv/bin/python benchmarks/filters.py --quick    # smoke run on 64^3, seconds

Options: ``--jobs median,convolve`` runs a subset; ``--tools`` adds tools the
harness knows (``chunkwise-cli``, ``dask`` for map_overlap); ``--rounds`` (default
3); ``--data DIR`` as in run.py (inputs are generated once and shared with it);
``--results DIR`` is where filters.md goes (default benchmarks/results/).

Jobs, each on a generated CT-like volume of 256^3 with 64^3 zstd chunks:

- median size 3 on uint16;
- rank_filter size 3, rank 20 of 27 on uint16 (scipy's percentile_filter with 75
  picks the same rank, int(27 * 0.75) = 20);
- convolve with a 7^3 kernel of random positive float64 weights summing to 1, on
  float32 input (the same CT-like volume, as uint8 values / 255). The kernel is
  not symmetric, so a convolution that forgot to mirror it would show; float
  input, because with integer input scipy casts each float64 sum to the input
  type, which truncates (and wraps around for kernels with negative weights).

This reuses run.py's harness: every tool runs in its own process started by
`_launcher.py` (wall, CPU and peak RSS of that process alone), with 2 workers and
the same output chunks; the tools run in rotated order, ``--rounds`` times, and
each tool's run with the median wall time is reported. The reference is the
``limit`` tool, scipy on the whole array in memory; every other output is compared
with it bit for bit (the bytes, so -0.0 differs from 0.0), and a difference is
reported with its largest absolute value rather than aborting the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from statistics import median

import _report
import numpy as np
import zarr
from _harness import BenchmarkError, Launcher, ensure_input, tool_command, warm
from _jobs import Input, Job
from run import _median_run, _meta, _output_chunks

HERE = Path(__file__).resolve().parent
REFERENCE = "limit"
TOOLS = (REFERENCE, "chunkwise-api", "dask-image")
KERNEL_SIZE = 7
KERNEL_SEED = 12


def inputs(quick: bool) -> dict[str, Input]:
    """The generated volumes, by name; quick mode: 64^3 in 16^3 chunks."""
    n, c = (64, 16) if quick else (256, 64)
    return {
        "u16": Input("u16", (n,) * 3, (c,) * 3, "uint16"),
        "f32": Input("f32", (n,) * 3, (c,) * 3, "float32"),
    }


def write_kernel(folder: Path) -> Path:
    """The 7^3 kernel as a .npy file: random positive weights summing to 1."""
    rng = np.random.default_rng(KERNEL_SEED)
    weights = rng.random((KERNEL_SIZE,) * 3)
    path = folder / f"kernel-{KERNEL_SIZE}.npy"
    np.save(path, weights / weights.sum())
    return path


def jobs(kernel: Path, rounds: int) -> tuple[Job, ...]:
    k = KERNEL_SIZE
    return (
        Job("median", "median size=3", "u16", ("median:size=3",), repeats=rounds),
        Job(
            "rank",
            "rank_filter size=3, rank=20",
            "u16",
            ("rank_filter:rank=20,size=3",),
            repeats=rounds,
        ),
        Job(
            "convolve",
            f"convolve, {k}x{k}x{k} random float kernel",
            "f32",
            (f"convolve:kernel={kernel}",),
            repeats=rounds,
        ),
    )


def difference(reference: Path, output: Path, slab: int = 64) -> str:
    """``"bit-identical"``, or how ``output`` differs from ``reference``."""
    ref = zarr.open_array(reference, mode="r")
    got = zarr.open_array(output, mode="r")
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return f"NO: {got.shape} {got.dtype}, scipy gives {ref.shape} {ref.dtype}"
    bits = f"u{ref.dtype.itemsize}"
    count, largest = 0, 0.0
    for z0 in range(0, ref.shape[0], slab):
        expected, actual = ref[z0 : z0 + slab], got[z0 : z0 + slab]
        unequal = expected.view(bits) != actual.view(bits)
        if unequal.any():
            count += int(unequal.sum())
            gap = np.abs(actual[unequal].astype(float) - expected[unequal])
            largest = max(largest, float(gap.max()))
    if count == 0:
        return "bit-identical"
    return f"NO: {count} voxels differ, max abs diff {largest:.3g}"


def run_job(job: Job, src: Path, scratch: Path, launcher: Launcher, tools) -> dict:
    """Every tool ``job.repeats`` times in rotated order; outputs against scipy."""
    chunks = _output_chunks(src, job)
    outputs, runs = {}, {tool: [] for tool in tools}
    for round_ in range(job.repeats):
        shift = round_ % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            dst = scratch / job.key / f"{tool}.zarr"
            shutil.rmtree(dst, ignore_errors=True)
            dst.parent.mkdir(parents=True, exist_ok=True)
            warm(src)
            record = launcher.measure(tool_command(tool, src, dst, chunks, job))
            runs[tool].append(record)
            outputs[tool] = dst
            print(
                f"  ({job.key}) {tool:14s} {_report.wall(record, tool):7.2f} s "
                f"{record['cpu_s']:6.2f} CPU s {record['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
    records = {tool: _median_run(runs[tool], tool) for tool in tools}
    for tool, record in records.items():
        record["cpus"] = [run["cpu_s"] for run in runs[tool]]
    for tool, path in outputs.items():
        if tool != REFERENCE:
            records[tool]["exact"] = difference(outputs[REFERENCE], path)
    shutil.rmtree(scratch / job.key)
    source = zarr.open_array(src, mode="r")
    return {
        "title": job.title,
        "input": f"{'x'.join(map(str, source.shape))} {source.dtype}, "
        f"{'x'.join(map(str, source.chunks))} chunks, zstd",
        "output_chunks": chunks,
        "tools": records,
    }


def _rounds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _table(job: dict) -> list[str]:
    tools = job["tools"]
    lines = [
        "| tool | wall s | wall of each round | CPU s | CPU of each round "
        "| peak RSS MB | equals scipy |",
        "| --- | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for tool, rec in tools.items():
        exact = rec.get("exact", "(the reference)")
        lines.append(
            f"| {tool} | {_report.wall(rec, tool):.2f} | {_rounds(rec['walls'])} "
            f"| {median(rec['cpus']):.2f} | {_rounds(rec['cpus'])} "
            f"| {rec['peak_rss_mb']:.0f} | {exact} |"
        )
    base, peer = tools.get("chunkwise-api"), tools.get("dask-image")
    if base and peer:
        lines += [
            "",
            "dask-image / chunkwise-api: wall "
            f"{_report.wall(peer, 'dask-image') / _report.wall(base, 'x'):.2f}x, "
            f"CPU {median(peer['cpus']) / median(base['cpus']):.2f}x, "
            f"peak RSS {peer['peak_rss_mb'] / base['peak_rss_mb']:.2f}x.",
        ]
    limit = tools.get(REFERENCE)
    if limit:
        lines.append(
            f"scipy on the whole array, CPU s: read {limit['read_cpu_s']:.2f}, "
            f"compute {limit['compute_cpu_s']:.2f}, write {limit['write_cpu_s']:.2f}."
        )
    return lines


def markdown(results: dict) -> str:
    meta = results["meta"]
    before, after = results["load"]
    out = [
        "# Filter benchmark: median, rank and 7^3 convolution (issue 12)",
        "",
        f"Command: `{meta['command']}`, {meta['date']}, "
        f"total {results['total_s']:.0f} s.",
        f"Machine: {meta['cpus']} CPUs ({results['cpu']}), {meta['platform']}, "
        f"Python {meta['python']}; {meta['workers']} workers per tool. Load average "
        f"(1, 5, 15 min) before: {before}; after: {after}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "**wall s**: the job, timed inside its process (imports excluded), the "
        "median of the rounds; for limit, the CPU time of reading, whole-array scipy "
        "and writing divided by the workers (a bound, not a run). **CPU s**: user + "
        "system, all threads, of the whole process (interpreter and imports "
        "included), the median of the rounds. **peak RSS**: the whole process, in "
        "the round with the median wall time. **equals scipy**: the output's bytes "
        "against scipy's on the whole array (the limit run).",
        "",
    ]
    for key, job in results["jobs"].items():
        out += [f"## ({key}) {job['title']}: {job['input']}", "", *_table(job), ""]
    return "\n".join(out) + "\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64^3 smoke run")
    parser.add_argument("--jobs", default="median,rank,convolve")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.data = args.data / "quick"
    if args.results is None:
        args.results = args.data / "quick-results" if args.quick else HERE / "results"
    tools = tuple(args.tools.split(","))
    args.tools = tools if REFERENCE in tools else (REFERENCE, *tools)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    start, load_before = time.perf_counter(), _load()
    args.data.mkdir(parents=True, exist_ok=True)
    keys = args.jobs.split(",")
    selected = [j for j in jobs(write_kernel(args.data), args.rounds) if j.key in keys]
    specs = inputs(args.quick)
    sources = {
        n: ensure_input(args.data, specs[n]) for n in {j.input for j in selected}
    }
    meta = _meta(argv)
    meta["command"] = " ".join(["python benchmarks/filters.py", *argv])
    results = {"meta": meta, "cpu": _cpu_model(), "jobs": {}}
    try:
        with Launcher() as launcher:
            for job in selected:
                print(f"({job.key}) {job.title}", flush=True)
                src, scratch = sources[job.input], args.data / "out"
                results["jobs"][job.key] = run_job(
                    job, src, scratch, launcher, args.tools
                )
    except BenchmarkError as error:
        print(f"\nABORTED, nothing reported: {error}", file=sys.stderr)
        return 1
    results["total_s"] = time.perf_counter() - start
    results["load"] = (load_before, _load())
    text = markdown(results)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "filters.md").write_text(text)
    print(text)
    print(f"wrote {args.results / 'filters.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
