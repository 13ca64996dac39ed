"""Measured records -> results.json, results.md (tables, targets), results.png."""

from __future__ import annotations

import json
from pathlib import Path

from _jobs import TOOLS

BASE = "chunkwise-api"
TARGET_JOBS = ("a", "b", "c", "d")


def wall(record: dict, tool: str) -> float:
    """The wall time a tool is judged by.

    The job itself, timed inside the process (imports excluded); for the CLI, the
    whole command, as a user waits for it; for the limit, its CPU time / workers.
    """
    if tool == "limit":
        return record["limit_s"]
    return record.get("work_wall_s", record["wall_s"])


def _check(text: str, value: str, met: bool | None) -> dict:
    return {"target": text, "value": value, "met": met}


def _job_targets(jobs: dict) -> list[dict]:
    out = []
    a = jobs.get("a", {}).get("tools", {})
    if {BASE, "dask-image", "limit"} <= a.keys():
        ck, di, lim = wall(a[BASE], BASE), wall(a["dask-image"], "x"), a["limit"]
        out.append(
            _check(
                "(a) wall <= 0.5 x dask-image",
                f"{ck:.2f} s vs 0.5 x {di:.2f} = {0.5 * di:.2f} s ({ck / di:.2f}x)",
                ck <= 0.5 * di,
            )
        )
        lim_s = lim["limit_s"]
        out.append(
            _check(
                "(a) wall <= 1.3 x limit",
                f"{ck:.2f} s vs 1.3 x {lim_s:.2f} = {1.3 * lim_s:.2f} s "
                f"({ck / lim_s:.2f}x)",
                ck <= 1.3 * lim_s,
            )
        )
    for key in TARGET_JOBS:
        tools = jobs.get(key, {}).get("tools", {})
        if not {BASE, "dask-image", "dask"} <= tools.keys():
            continue
        ck = wall(tools[BASE], BASE)
        di, dm = wall(tools["dask-image"], "x"), wall(tools["dask"], "x")
        out.append(
            _check(
                f"({key}) faster than dask-image and dask",
                f"{ck:.2f} s vs {di:.2f} s and {dm:.2f} s",
                ck < di and ck < dm,
            )
        )
        r_ck, r_di = tools[BASE]["peak_rss_mb"], tools["dask-image"]["peak_rss_mb"]
        out.append(
            _check(
                f"({key}) peak RSS <= 0.75 x dask-image",
                f"{r_ck:.0f} MB vs 0.75 x {r_di:.0f} = {0.75 * r_di:.0f} MB "
                f"({r_ck / r_di:.2f}x)",
                r_ck <= 0.75 * r_di,
            )
        )
    return out


def _scaling_targets(jobs: dict) -> list[dict]:
    a = jobs.get("a", {}).get("tools", {}).get(BASE)
    e = jobs.get("e", {}).get("tools", {}).get(BASE)
    if a is None or e is None:
        return [
            _check("RSS(e) <= 1.15 x RSS(a)", "(e) not run", None),
            _check("7 <= wall(e) / wall(a) <= 9", "(e) not run", None),
        ]
    rss_ratio = e["peak_rss_mb"] / a["peak_rss_mb"]
    time_ratio = wall(e, BASE) / wall(a, BASE)
    return [
        _check(
            "RSS(e) <= 1.15 x RSS(a)",
            f"{e['peak_rss_mb']:.0f} MB / {a['peak_rss_mb']:.0f} MB = {rss_ratio:.2f}",
            rss_ratio <= 1.15,
        ),
        _check(
            "7 <= wall(e) / wall(a) <= 9",
            f"{wall(e, BASE):.2f} s / {wall(a, BASE):.2f} s = {time_ratio:.2f}",
            7 <= time_ratio <= 9,
        ),
    ]


def targets(jobs: dict) -> list[dict]:
    """Issue 4's targets for chunkwise (Python API), each MET, MISSED or not run."""
    return _job_targets(jobs) + _scaling_targets(jobs)


def _status(met: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "NOT RUN"}[met]


def _job_table(job: dict) -> list[str]:
    tools = job["tools"]
    base = tools.get(BASE)
    lines = [
        "| tool | wall s | process wall s | CPU s | peak RSS MB "
        "| wall / ck | CPU / ck | RSS / ck |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tool, rec in tools.items():
        w = wall(rec, tool)
        ratios = ["", "", ""]
        if base is not None:
            ratios = [
                f"{w / wall(base, BASE):.2f}",
                f"{rec['cpu_s'] / base['cpu_s']:.2f}",
                f"{rec['peak_rss_mb'] / base['peak_rss_mb']:.2f}",
            ]
        lines.append(
            f"| {tool} | {w:.2f} | {rec['wall_s']:.2f} | {rec['cpu_s']:.2f} "
            f"| {rec['peak_rss_mb']:.0f} | {' | '.join(ratios)} |"
        )
    rounds = {tool: rec.get("walls", []) for tool, rec in tools.items()}
    if any(len(walls) > 1 for walls in rounds.values()):
        lines.append("")
        lines.append(
            "Each tool ran "
            f"{max(len(w) for w in rounds.values())} times, in rotated order; the "
            "row is its run with the median wall time. Wall times of every run: "
            + "; ".join(
                f"{tool} {', '.join(f'{w:.2f}' for w in walls)}"
                for tool, walls in rounds.items()
            )
            + "."
        )
    return lines


def markdown(results: dict) -> str:
    meta = results["meta"]
    out = [
        "# Benchmark results",
        "",
        f"Command: `{meta['command']}`. Machine: {meta['cpus']} CPUs, "
        f"{meta['workers']} workers per tool. Total runtime of the benchmark "
        f"(generation, runs, checks): {results['total_s']:.0f} s.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "**wall s**: the job, timed inside its process (imports excluded); for "
        "chunkwise-cli the whole command; for limit, CPU time of read + whole-array "
        "scipy + write divided by the workers. **process wall s**, **CPU s** "
        "(user + system, all threads) and **peak RSS** cover the whole process, "
        "interpreter and imports included. Ratios are to chunkwise-api (ck).",
        "",
    ]
    for key, job in results["jobs"].items():
        out += [
            f"## ({key}) {job['title']}: {job['input']}",
            "",
            *_job_table(job),
            "",
            f"Every output equals the {job['reference']} output voxel for voxel.",
        ]
        limit = job["tools"].get("limit")
        if limit:
            out.append(
                f"Limit parts (CPU s): read {limit['read_cpu_s']:.2f}, compute "
                f"{limit['compute_cpu_s']:.2f}, write {limit['write_cpu_s']:.2f}."
            )
        out.append("")
    out += ["## Targets (issue 4)", "", "| target | measured | status |"]
    out.append("| --- | --- | --- |")
    out += [
        f"| {t['target']} | {t['value']} | {_status(t['met'])} |"
        for t in results["targets"]
    ]
    return "\n".join(out) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = results["jobs"]
    fig, axes = plt.subplots(1, len(jobs), figsize=(3.2 * len(jobs), 3.6))
    axes = [axes] if len(jobs) == 1 else list(axes)
    colours = plt.get_cmap("tab10").colors
    for ax, (key, job) in zip(axes, jobs.items(), strict=True):
        names = list(job["tools"])
        values = [wall(job["tools"][t], t) for t in names]
        ax.bar(
            range(len(names)), values, color=[colours[TOOLS.index(t)] for t in names]
        )
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"({key}) {job['title']}", fontsize=9)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    axes[0].set_ylabel("wall time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "results.md").write_text(markdown(results))
    plot(results, folder / "results.png")
