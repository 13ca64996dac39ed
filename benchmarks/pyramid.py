"""OME-Zarr pyramids: what building one during a run costs, and converting to one.

Run ``python benchmarks/pyramid.py`` (``--quick`` for a 128^3 smoke run). Two jobs on
the 512^3 uint8 sample (64^3 chunks, zstd), each tool in its own process, measured
by `_launcher.py` (wall time, peak RSS), in rotated order over ``--rounds``:

- **run**: Gaussian sigma=2 into a plain Zarr array, and into an OME-Zarr image with
  its pyramid (levels 512^3, 256^3). Target: the pyramid adds <= 15% wall time.
- **convert**: the input into a 3-level OME-Zarr pyramid (mean x2 per level) by
  chunkwise (``chunkwise run IN OUT.ome.zarr`` with no operation), ngff-zarr
  (``to_multiscales`` + ``to_ngff_zarr``, bin-shrink mean) and ome-zarr-py
  (``write_image``, local mean over z, y and x). Target: chunkwise <= 0.5x the
  faster peer's wall time at no more than its peak RSS, its levels bit-identical
  to an independent numpy reference (mean of 2x2x2, rounded half to even).

Results go to ``benchmarks/results/pyramid.md``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import zarr
from _harness import CHUNKWISE_CLI, HERE, Launcher, ensure_input, warm
from _jobs import WORKERS, Input

LEVELS = 3


def _chunkwise(src: Path, dst: Path, *extra: str) -> list[str]:
    return [str(CHUNKWISE_CLI), "run", str(src), str(dst), "-j", str(WORKERS),
            "--quiet", *extra]  # fmt: skip


def _peer(tool: str, src: Path, dst: Path) -> list[str]:
    return [sys.executable, str(HERE / "_peers.py"), tool, str(src), str(dst),
            str(LEVELS)]  # fmt: skip


def _rounds(launcher, commands: dict, rounds: int, src: Path) -> dict[str, list]:
    runs: dict[str, list] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            command, dst = commands[name]
            shutil.rmtree(dst, ignore_errors=True)
            warm(src)
            record = launcher.measure(command)
            runs[name].append(record)
            print(
                f"  {name:24s} {record['wall_s']:7.2f} s "
                f"{record['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
    return runs


def _median(records: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in records)


def _reduce(data: np.ndarray) -> np.ndarray:
    """Mean over 2x2x2 windows (even shapes), rounded half to even: the reference."""
    z, y, x = (n // 2 for n in data.shape)
    sums = data.reshape(z, 2, y, 2, x, 2).sum(axis=(1, 3, 5), dtype=np.float64)
    return np.rint(sums / 8).astype(data.dtype)


def _levels_of(path: Path) -> list[np.ndarray]:
    """The arrays of an OME-Zarr image's first multiscale, finest first."""
    from chunkwise._ngff import read_multiscale

    group = zarr.open_group(path, mode="r")
    image = read_multiscale(group)
    if image is None:  # ngff-zarr may nest the image one group down
        return []
    return [group[level.path][:] for level in image.levels]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128^3 smoke run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    args = parser.parse_args(argv)
    side = 128 if args.quick else 512
    args.data.mkdir(parents=True, exist_ok=True)
    src = ensure_input(args.data, Input("u8", (side,) * 3, (64,) * 3, "uint8"))
    scratch = args.data / "pyramid-scratch"
    scratch.mkdir(exist_ok=True)
    gaussian = ("--op", "gaussian:sigma=2")
    run_commands = {
        "chunkwise plain": (
            _chunkwise(src, scratch / "plain.zarr", *gaussian),
            scratch / "plain.zarr",
        ),
        "chunkwise ome-zarr": (
            _chunkwise(src, scratch / "gauss.ome.zarr", *gaussian),
            scratch / "gauss.ome.zarr",
        ),
    }
    convert_commands = {
        "chunkwise": (
            _chunkwise(src, scratch / "cw.ome.zarr", "--levels", str(LEVELS)),
            scratch / "cw.ome.zarr",
        ),
        "ngff-zarr": (
            _peer("ngff-zarr", src, scratch / "nz.ome.zarr"),
            scratch / "nz.ome.zarr",
        ),
        "ome-zarr-py": (
            _peer("ome-zarr-py", src, scratch / "oz.ome.zarr"),
            scratch / "oz.ome.zarr",
        ),
    }
    with Launcher() as launcher:
        print("run: Gaussian sigma=2, plain and with a pyramid", flush=True)
        runs = _rounds(launcher, run_commands, args.rounds, src)
        print("convert: into a 3-level OME-Zarr pyramid", flush=True)
        converts = _rounds(launcher, convert_commands, args.rounds, src)

    expected = [zarr.open_array(src, mode="r")[:]]
    for _ in range(LEVELS - 1):
        expected.append(_reduce(expected[-1]))
    ours = _levels_of(scratch / "cw.ome.zarr")
    identical = len(ours) == LEVELS and all(
        np.array_equal(a, b) for a, b in zip(ours, expected, strict=True)
    )
    peers = {}
    for tool, name in (("ngff-zarr", "nz"), ("ome-zarr-py", "oz")):
        levels = _levels_of(scratch / f"{name}.ome.zarr")
        peers[tool] = [
            int(np.abs(a.astype(int) - b.astype(int)).max())
            if a.shape == b.shape
            else f"shape {a.shape}"
            for a, b in zip(levels, expected, strict=False)
        ]
    gauss_levels = len(_levels_of(scratch / "gauss.ome.zarr"))
    shutil.rmtree(scratch)

    plain, pyramid = (
        _median(runs[n], "wall_s") for n in ("chunkwise plain", "chunkwise ome-zarr")
    )
    walls = {n: _median(converts[n], "wall_s") for n in convert_commands}
    rss = {n: _median(converts[n], "peak_rss_mb") for n in convert_commands}
    faster = min(("ngff-zarr", "ome-zarr-py"), key=walls.get)
    rows = [
        "# OME-Zarr pyramids (issue 10)",
        "",
        f"Command: `python benchmarks/pyramid.py{' --quick' if args.quick else ''}`"
        f"; {side}^3 uint8 sample, 64^3 chunks, {WORKERS} workers, "
        f"{args.rounds} rounds in rotated order, medians.",
        "",
        "| tool | rounds: wall (s) | median wall | median CPU | median peak RSS |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, records in {**runs, **converts}.items():
        walls_text = " / ".join(f"{r['wall_s']:.2f}" for r in records)
        rows.append(
            f"| {name} | {walls_text} | {_median(records, 'wall_s'):.2f} s | "
            f"{_median(records, 'cpu_s'):.2f} s | "
            f"{_median(records, 'peak_rss_mb'):.0f} MB |"
        )
    ratio = pyramid / plain
    # Each round runs both back to back: their ratio is less exposed to the load of
    # a shared machine drifting between rounds than the ratio of the medians.
    paired = statistics.median(
        p["wall_s"] / q["wall_s"]
        for p, q in zip(
            runs["chunkwise ome-zarr"], runs["chunkwise plain"], strict=True
        )
    )
    cpu = _median(runs["chunkwise ome-zarr"], "cpu_s") / _median(
        runs["chunkwise plain"], "cpu_s"
    )
    speed = walls["chunkwise"] / walls[faster]
    lean = rss["chunkwise"] <= rss[faster]
    rows += [
        "",
        "| target | measured | status |",
        "| --- | --- | --- |",
        f"| pyramid adds <= 15% to the run ({gauss_levels} levels) | "
        f"{pyramid:.2f} s / {plain:.2f} s = {ratio:.2f} (per round: median "
        f"{paired:.2f}; CPU {cpu:.2f}) | {'MET' if ratio <= 1.15 else 'MISSED'} |",
        f"| convert <= 0.5x the faster peer ({faster}) | "
        f"{walls['chunkwise']:.2f} s / {walls[faster]:.2f} s = {speed:.2f} | "
        f"{'MET' if speed <= 0.5 else 'MISSED'} |",
        f"| peak RSS <= the faster peer's | {rss['chunkwise']:.0f} MB vs "
        f"{rss[faster]:.0f} MB | {'MET' if lean else 'MISSED'} |",
        f"| levels bit-identical to the numpy reference | {identical} | "
        f"{'MET' if identical else 'MISSED'} |",
        "",
        "Largest difference of the peers' levels from the reference, per level "
        "(they round or reduce differently; for information): "
        + "; ".join(f"{tool}: {diffs}" for tool, diffs in peers.items()),
        "",
    ]
    text = "\n".join(rows)
    print(text)
    results = HERE / "results" if not args.quick else args.data
    results.mkdir(exist_ok=True)
    (results / "pyramid.md").write_text(text)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
