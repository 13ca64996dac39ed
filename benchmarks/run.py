"""Chunkwise against dask-image, dask map_overlap and the hardware limit, in one run.

Command (from the repository root)::

    .venv/bin/python benchmarks/run.py            # full run, under 10 minutes
    .venv/bin/python benchmarks/run.py --quick    # smoke run on 64^3, seconds

Options: ``--skip-large`` leaves out job (e) (1024^3); ``--jobs a,c`` runs a
subset; ``--data DIR`` is the cache of generated inputs and the scratch space for
outputs (default benchmarks/.data/, git-ignored; inputs are generated once);
``--results DIR`` is where results.md, results.json and results.png go (default
benchmarks/results/, or DIR/quick-results under --quick).

Jobs (issue 4), each on a generated CT-like volume with 64^3 zstd chunks:
(a) gaussian sigma=2 on 512^3 uint8; (b) median size 3 on 256^3 uint16;
(c) downsample x2 mean on 512^3; (d) gaussian sigma=1 -> downsample x2 on 512^3;
(e) gaussian sigma=2 on 1024^3.

Tools, each in its own process with 2 workers: chunkwise's Python API and CLI,
dask-image (``ndfilters`` + ``to_zarr``, threads), dask ``map_overlap`` with the
scipy function, and the limit (CPU time to read all input, compute with scipy on
the whole array and write all output, divided by the workers). Every output is
compared voxel for voxel with the whole-array scipy result (for (e), with
dask-image's, slab by slab) before anything is reported; a mismatch aborts.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import _report
import zarr
from _harness import (
    BenchmarkError,
    Launcher,
    compare,
    ensure_input,
    tool_command,
    warm,
)
from _jobs import JOBS, TOOLS, TOOLS_LARGE, WORKERS, Job, inputs

import chunkwise
from chunkwise import ops

HERE = Path(__file__).resolve().parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64^3 smoke run")
    parser.add_argument("--skip-large", action="store_true", help="skip job (e)")
    parser.add_argument("--jobs", default="a,b,c,d,e", help="subset, e.g. a,c")
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.data = args.data / "quick"
    if args.results is None:
        args.results = args.data / "quick-results" if args.quick else HERE / "results"
    return args


def _output_chunks(src: Path, job: Job) -> tuple[int, ...]:
    """chunkwise's default output chunks; every tool writes this layout."""
    op = chunkwise.chain(*(ops.parse(s) for s in job.steps))
    return chunkwise.plan(str(src), op, n_jobs=WORKERS).chunks


def run_job(job: Job, src: Path, scratch: Path, launcher: Launcher) -> dict:
    tools = TOOLS_LARGE if job.large else TOOLS
    reference = "dask-image" if job.large else "limit"
    chunks = _output_chunks(src, job)
    outputs, runs = {}, {tool: [] for tool in tools}
    for round_ in range(job.repeats):
        # Rotate the order so that no tool always runs first, or last.
        for tool in tools[round_ % len(tools) :] + tools[: round_ % len(tools)]:
            dst = scratch / job.key / f"{tool}.zarr"
            shutil.rmtree(dst, ignore_errors=True)
            dst.parent.mkdir(parents=True, exist_ok=True)
            warm(src)
            record = launcher.measure(tool_command(tool, src, dst, chunks, job))
            runs[tool].append(record)
            outputs[tool] = dst
            print(
                f"  ({job.key}) {tool:14s} {_report.wall(record, tool):7.2f} s "
                f"{record['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
    records = {tool: _median_run(runs[tool], tool) for tool in tools}
    compare(outputs.pop(reference), outputs)
    shutil.rmtree(scratch / job.key)
    source = zarr.open_array(src, mode="r")
    return {
        "title": job.title,
        "input": f"{'x'.join(map(str, source.shape))} {source.dtype}, "
        f"{'x'.join(map(str, source.chunks))} chunks, zstd",
        "steps": list(job.steps),
        "reference": "whole-array scipy (limit)" if reference == "limit" else reference,
        "tools": records,
    }


def _median_run(runs: list[dict], tool: str) -> dict:
    """The run with the median wall time, noting every run's wall time."""
    ordered = sorted(runs, key=lambda record: _report.wall(record, tool))
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["walls"] = [_report.wall(record, tool) for record in runs]
    return median


def _meta(argv: list[str]) -> dict:
    names = ("chunkwise", "zarr", "numpy", "scipy", "dask", "dask-image")
    return {
        "command": " ".join(["python benchmarks/run.py", *argv]),
        "cpus": os.cpu_count(),
        "workers": WORKERS,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {n: importlib.metadata.version(n) for n in names},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    start = time.perf_counter()
    keys = set(args.jobs.split(","))
    jobs = [j for j in JOBS if j.key in keys and not (j.large and args.skip_large)]
    specs = inputs(args.quick)
    args.data.mkdir(parents=True, exist_ok=True)
    sources = {n: ensure_input(args.data, specs[n]) for n in {j.input for j in jobs}}
    results = {"meta": _meta(argv), "jobs": {}}
    try:
        with Launcher() as launcher:
            for job in jobs:
                print(f"({job.key}) {job.title}", flush=True)
                src, scratch = sources[job.input], args.data / "out"
                results["jobs"][job.key] = run_job(job, src, scratch, launcher)
    except BenchmarkError as error:
        print(f"\nABORTED, nothing reported: {error}", file=sys.stderr)
        return 1
    results["targets"] = _report.targets(results["jobs"])
    results["total_s"] = time.perf_counter() - start
    _report.write(results, args.results)
    print(_report.markdown(results))
    print(f"wrote {args.results}/results.md, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
