"""Inputs (generated once, cached), measured subprocesses and output checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr
from _jobs import WORKERS, Input, Job

import chunkwise
from chunkwise import ops
from chunkwise._sample import write_synthetic_ct

HERE = Path(__file__).resolve().parent
CHUNKWISE_CLI = Path(sys.executable).with_name("chunkwise")


class BenchmarkError(RuntimeError):
    """A tool failed or produced a wrong output: no timing is reported."""


def _is_ready(path: Path, spec: Input) -> bool:
    try:
        array = zarr.open_array(path, mode="r")
    except Exception:
        return False
    return (
        array.shape == spec.shape
        and array.chunks == spec.chunks
        and array.dtype == np.dtype(spec.dtype)
    )


def ensure_input(root: Path, spec: Input) -> Path:
    """The cached input ``spec`` under ``root``, generated if missing or stale.

    Written to a temporary name and renamed, so an interrupted run leaves no
    half-written volume that a later run would trust.
    """
    path = root / f"{spec.name}-{spec.shape[0]}.zarr"
    if _is_ready(path, spec):
        return path
    print(f"generating {path.name} {spec.shape} {spec.dtype} ...", flush=True)
    tmp = root / f".{path.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    if spec.dtype == "uint8":
        write_synthetic_ct(tmp, spec.shape, chunks=spec.chunks)
    else:
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            u8 = write_synthetic_ct(
                Path(scratch) / "u8.zarr", spec.shape, chunks=spec.chunks
            )
            # Full uint16 range (k * 257), so the median runs on wide values.
            chunkwise.process(u8, ops.rescale((0, 255), dtype=spec.dtype), tmp)
    tmp.rename(path)
    return path


def warm(path: Path) -> None:
    """Read every file of ``path`` so each tool starts with the input in page cache."""
    for file in path.rglob("*"):
        if file.is_file():
            file.read_bytes()


def tool_command(tool: str, src: Path, dst: Path, chunks, job: Job) -> list[str]:
    if tool == "chunkwise-cli":
        ops_args = [arg for step in job.steps for arg in ("--op", step)]
        chunk_text = ",".join(map(str, chunks))
        return [
            str(CHUNKWISE_CLI), "run", str(src), str(dst), *ops_args,
            "-j", str(WORKERS), "--chunks", chunk_text, "--quiet",
        ]  # fmt: skip
    return [
        sys.executable, str(HERE / "_worker.py"), tool, str(src), str(dst),
        ",".join(map(str, chunks)), *job.steps,
    ]  # fmt: skip


class Launcher:
    """A `_launcher.py` process that starts and measures each tool's command."""

    def __enter__(self) -> Launcher:
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "_launcher.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.stdin.close()
        self._process.wait()

    def measure(self, command: list[str]) -> dict:
        """Run ``command``; its wall time, CPU time and peak RSS, plus its JSON."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            request = {"command": command, "stdout": str(out), "stderr": str(err)}
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            record = json.loads(self._process.stdout.readline())
            stdout, stderr = out.read_text(), err.read_text()
        if record.pop("returncode") != 0:
            raise BenchmarkError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
        lines = stdout.strip().splitlines()
        if lines and lines[-1].startswith("{"):
            record |= json.loads(lines[-1])
        return record


def compare(reference: Path, outputs: dict[str, Path], slab: int = 64) -> None:
    """Raise unless every output equals ``reference`` exactly, one z slab at a time.

    Slabs keep memory bounded for the large job; the reference slab is read once
    for all outputs.
    """
    ref = zarr.open_array(reference, mode="r")
    arrays = {name: zarr.open_array(path, mode="r") for name, path in outputs.items()}
    for name, array in arrays.items():
        if array.shape != ref.shape or array.dtype != ref.dtype:
            raise BenchmarkError(
                f"{name}: output {array.shape} {array.dtype} differs from the "
                f"reference {ref.shape} {ref.dtype} ({reference})"
            )
    for z0 in range(0, ref.shape[0], slab):
        expected = ref[z0 : z0 + slab]
        for name, array in arrays.items():
            got = array[z0 : z0 + slab]
            if not np.array_equal(got, expected):
                wrong = np.argwhere(got != expected)
                diff = np.abs(got.astype(np.int64) - expected.astype(np.int64)).max()
                first = tuple(int(i) for i in wrong[0] + (z0, 0, 0))
                raise BenchmarkError(
                    f"{name}: output differs from the reference {reference.name} in "
                    f"{len(wrong)} voxels of planes {z0}..{z0 + slab} (first at "
                    f"{first}, max abs diff {diff}); no timings reported"
                )
