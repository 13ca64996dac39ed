"""Hostile command lines: one line on stderr, the right exit code, no traceback.

Issue 9. The table runs ``chunkwise.cli.main`` in this process on real stores; what
needs a real process (signals, a closed pipe, a module broken at import, napari)
runs the installed command in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage

from chunkwise._sample import synthetic_ct
from chunkwise.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: The console script, as users run it; ``python -m chunkwise.cli`` where absent.
SCRIPT = Path(sys.executable).with_name("chunkwise")
COMMAND = (str(SCRIPT),) if SCRIPT.exists() else (sys.executable, "-m", "chunkwise.cli")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHUNKWISE_DEBUG"}
    paths = [extra.pop("PYTHONPATH", ""), str(ROOT / "src"), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env | extra


def _start(*args: object, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(**env),
    )


def _run(*args: object, timeout: float = 120, **env: str) -> tuple[int, str, str]:
    process = _start(*args, **env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert lines[0].startswith("chunkwise: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """Inputs for the table: a small volume, one with a 139-voxel axis, ..."""
    root = tmp_path_factory.mktemp("hostile")
    small = root / "in.zarr"
    zarr.create_array(small, data=synthetic_ct((24, 32, 40)), chunks=(16, 16, 16))
    long = root / "long.zarr"
    data = np.zeros((139, 16, 16), np.uint8)
    zarr.create_array(long, data=data, chunks=(64, 16, 16))
    # 120**3 whose chunks were never written: a layout to plan, nothing to read.
    zarr.create_array(root / "cube.zarr", shape=(120,) * 3, dtype="uint8")
    nan = np.ones((16, 16, 16), np.float32)
    nan[3, 4, 5] = np.nan
    zarr.create_array(root / "nan.zarr", data=nan, chunks=(8, 8, 8))
    for name, fmt in (("zero2.zarr", 2), ("zero3.zarr", 3)):
        path = root / name
        zarr.create_array(path, data=data[:20], chunks=(8, 8, 8), zarr_format=fmt)
        _set_chunk_shape(path, [0, 8, 8])
    (root / "picture.tif").write_bytes(b"II*\x00")
    return {"in": small, "root": root}


def _set_chunk_shape(path: Path, chunks: list[int]) -> None:
    """Hand-edit an array's metadata, as a damaged or hostile copy would hold."""
    if (path / ".zarray").exists():
        meta = json.loads((path / ".zarray").read_text())
        meta["chunks"] = chunks
        (path / ".zarray").write_text(json.dumps(meta))
        return
    meta = json.loads((path / "zarr.json").read_text())
    meta["chunk_grid"]["configuration"]["chunk_shape"] = chunks
    (path / "zarr.json").write_text(json.dumps(meta))


RUN = ("run", "{in}", "{out}", "--op", "invert")

#: (command line, exit code, texts the one stderr line contains).
HOSTILE = {
    "no command": ((), 2, ["COMMAND", "chunkwise --help"]),
    "unknown command": (("frob",), 2, ["invalid choice: 'frob'"]),
    "unknown option": ((*RUN, "--bogus"), 2, ["unrecognized arguments: --bogus"]),
    "missing arguments": (("run",), 2, ["input, output", "chunkwise run --help"]),
    "levels of a plain array": (
        ("run", "{in}", "{out}", "--levels", "2"),
        2,
        ["levels needs format='ome-zarr'"],
    ),
    "no such format": (("run", "{in}", "{out}", "--format", "tiff"), 2, ["invalid"]),
    "zero levels": (("run", "{in}", "{out}", "--levels", "0"), 2, [">= 1"]),
    "level of a plain array": (
        ("run", "{in}", "{out}", "--level", "1"),
        2,
        ["has no level 1"],
    ),
    "missing path": (("info",), 2, ["required: path", "chunkwise info --help"]),
    "bad int for -j": ((*RUN, "-j", "x"), 2, ["argument -j/--jobs", "'x'"]),
    "zero jobs": ((*RUN, "-j", "0"), 2, ["-j/--jobs", "got 0"]),
    "bad --chunks": (
        (*RUN, "--chunks", "x"),
        2,
        [
            "chunkwise: error: argument --chunks: expected integers like 64,64,64, "
            "got 'x' (see chunkwise run --help)"
        ],
    ),
    "bad choice": ((*RUN, "--backend", "spark"), 2, ["--backend", "'spark'"]),
    "bad format": ((*RUN, "--zarr-format", "4"), 2, ["--zarr-format"]),
    "bad timeout": ((*RUN, "--timeout", "0"), 2, ["--timeout", "positive"]),
    "overwrite and resume": (
        (*RUN, "--overwrite", "--resume"),
        2,
        ["--resume: not allowed with argument --overwrite"],
    ),
    "force alone": ((*RUN, "--force"), 2, ["--force", "--overwrite"]),
    "sample in 2D": (("sample", "{out}", "--shape", "4,4"), 2, ["3 integers"]),
    "sample in 4D": (("sample", "{out}", "--shape", "4,4,4,4"), 2, ["3 integers"]),
    "sample chunks in 2D": (
        ("sample", "{out}", "--chunks", "4,4"),
        2,
        ["--chunks", "3 integers"],
    ),
    "absurd sample": (
        ("sample", "{out}", "--shape", "100000,100000,100000"),
        2,
        ["1e+15 voxels", "2**36"],
    ),
    "demo in 2D": (("demo", "--shape", "4,4"), 2, ["3 integers"]),
    "demo in 4D": (("demo", "--shape", "4,4,4,4"), 2, ["3 integers"]),
    "unknown input protocol": (
        ("run", "foo://x/in.zarr", "{out}", "--op", "invert"),
        2,
        ["foo://x/in.zarr", "foo"],
    ),
    "unknown protocol for info": (("info", "foo://x/in.zarr"), 2, ["foo"]),
    "unknown output protocol": (
        ("run", "{in}", "foo://x/out.zarr", "--op", "invert"),
        2,
        ["foo://x/out.zarr"],
    ),
    "unreachable output URL": (
        ("run", "{in}", "http://127.0.0.1:9/out.zarr", "--op", "invert"),
        2,
        ["http://127.0.0.1:9/out.zarr"],
    ),
    "memory output": (
        ("run", "{in}", "memory://out.zarr", "--op", "invert"),
        2,
        ["a memory:// output vanishes when the command exits; write to a path"],
    ),
    "parameter twice": (
        ("run", "{in}", "{out}", "--op", "gaussian:sigma=2,sigma=3"),
        2,
        ["parameter sigma is given twice"],
    ),
    "astype float16": (
        ("run", "{in}", "{out}", "--op", "astype:dtype=float16"),
        2,
        ["dtype float16 is not supported", "use float32"],
    ),
    "rescale float16": (
        ("run", "{in}", "{out}", "--op", "rescale:in_range=0/255,dtype=float16"),
        2,
        ["float16 is not supported"],
    ),
    "custom float16": (
        ("run", "{in}", "{out}", "--op", "custom:function=numpy:copy,dtype=float16"),
        2,
        ["float16 is not supported"],
    ),
    "huge sigma": (
        ("run", "{root}/long.zarr", "{out}", "--op", "gaussian:sigma=1e6"),
        2,
        [
            "sigma 1e+06 needs a kernel reaching 4000000 voxels along axis 0, more "
            "than twice its length 139"
        ],
    ),
    "huge median": (
        ("run", "{root}/long.zarr", "{out}", "--op", "median:size=999"),
        2,
        ["size 999", "reaching 499 voxels along axis 0", "length 139"],
    ),
    "upsample by 1000": (
        ("run", "{root}/cube.zarr", "{out}", "--op", "upsample:factor=1000"),
        2,
        ["(120000, 120000, 120000)", "1.73e+15 voxels", "2**50"],
    ),
    "0 chunk in .zarray": (
        ("run", "{root}/zero2.zarr", "{out}", "--op", "invert"),
        2,
        ["chunks (0, 8, 8)", "damaged"],
    ),
    "0 chunk in zarr.json": (("info", "{root}/zero3.zarr"), 2, ["chunks (0, 8, 8)"]),
    "NaN into uint8": (
        ("run", "{root}/nan.zarr", "{out}", "--op", "astype:dtype=uint8", "--quiet"),
        1,
        ["run failed: block", "astype to uint8", "NaN", "no integer value"],
    ),
    "view a path that is not there": (("view", "{root}/nope.zarr"), 2, ["nope.zarr"]),
    "view a file that is not Zarr": (("view", "{root}/picture.tif"), 2, [".zarr"]),
}


@pytest.mark.parametrize(
    ("argv", "code", "texts"), list(HOSTILE.values()), ids=list(HOSTILE)
)
def test_hostile_command_line(stores, tmp_path, capsys, argv, code, texts):
    out = tmp_path / "out.zarr"
    fill = {"in": stores["in"], "root": stores["root"], "out": out}
    assert main([arg.format(**fill) for arg in argv]) == code
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    for text in texts:
        assert text in line, line
    if code == 2:
        assert not out.exists(), "refused, yet something was written"


def test_chunks_larger_than_the_volume_are_cut_to_it(stores, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    argv = ["run", str(stores["in"]), str(out), "--op", "invert", "--quiet"]
    assert main([*argv, "--chunks", "99999,99999,99999"]) == 0
    result = zarr.open_array(out, mode="r")
    assert result.chunks == result.shape == (24, 32, 40)
    expected = np.invert(zarr.open_array(stores["in"], mode="r")[:])
    np.testing.assert_array_equal(result[:], expected)


def test_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch, capsys):
    import chunkwise.cli

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setitem(chunkwise.cli._COMMANDS, "ops", broken)
    assert main(["ops"]) == 1
    assert _one_line(capsys.readouterr().err) == (
        "chunkwise: internal error: TypeError: a bug "
        "(set CHUNKWISE_DEBUG=1 for the traceback)"
    )
    monkeypatch.setenv("CHUNKWISE_DEBUG", "1")
    with pytest.raises(TypeError, match="a bug"):
        main(["ops"])


def test_an_unhandled_os_error_names_the_file(monkeypatch, capsys):
    import chunkwise.cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/some/where.zarr")

    monkeypatch.setitem(chunkwise.cli._COMMANDS, "ops", denied)
    assert main(["ops"]) == 1
    assert _one_line(capsys.readouterr().err) == (
        "chunkwise: error: /some/where.zarr: Permission denied"
    )


# ------------------------------------------------------------ real processes


BROKEN_MODULES = {
    "raises": ('raise RuntimeError("no licence server")\n', "RuntimeError"),
    "syntax": ("def f(:\n    pass\n", "SyntaxError"),
    "exits": ("import sys\nsys.exit(3)\n", "SystemExit"),
}


@pytest.mark.parametrize("kind", list(BROKEN_MODULES))
def test_a_custom_module_broken_at_import_is_one_line(stores, tmp_path, kind):
    source, error = BROKEN_MODULES[kind]
    (tmp_path / "badmod.py").write_text(source)
    out = tmp_path / "out.zarr"
    code, _, err = _run(
        "run", stores["in"], out, "--op", "custom:function=badmod:f",
        PYTHONPATH=str(tmp_path),
    )  # fmt: skip
    assert code == 2, err
    line = _one_line(err)
    assert "badmod" in line and error in line, line
    assert not out.exists()


def test_view_of_a_missing_path_stops_before_napari(stores):
    started = time.perf_counter()
    code, _, err = _run("view", stores["root"] / "nope.zarr", timeout=60)
    assert code == 2, err
    assert "nope.zarr" in _one_line(err)
    # napari alone takes seconds to import; the check comes before it.
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("command", ["info", "ops"])
def test_closed_stdout_exits_141_quietly(stores, command):
    process = _start(command, *([stores["in"]] if command == "info" else []))
    process.stdout.close()  # as `chunkwise info | head -0` does
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141, err
    assert err == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_after_the_command_is_over_does_not_kill_it(signum):
    # Python shuts down for about 0.15 s after a run, partly with default signal
    # actions: a late SIGTERM killed a finished run, exit -15.
    code = (
        "import os, sys\n"
        "from chunkwise.cli import main\n"
        "sys.argv = ['chunkwise', 'ops']\n"
        "code = main()\n"
        f"os.kill(os.getpid(), {int(signum)})\n"
        "print('still here', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr == "still here\n"


def test_no_stdout_at_all_is_no_error(stores):
    # `chunkwise info in.zarr >&-`: Python starts with sys.stdout None.
    process = subprocess.run(
        [sys.executable, "-m", "chunkwise.cli", "info", str(stores["in"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr == ""


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_ctrl_c_during_start_up_exits_130_without_traceback(delay):
    # The signal is sent `delay` after the console script has taken the signals
    # over, which Python reports (-X importtime) as the end of importing
    # chunkwise._console: what comes after is chunkwise's start-up (argparse, zarr,
    # numpy), which must end in one line. Before that moment the interpreter's own
    # start-up runs, which no program can make quiet.
    command = (
        COMMAND if SCRIPT.exists() else (sys.executable, "-m", "chunkwise._console")
    )
    process = subprocess.Popen(
        [*command, "info", "x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(PYTHONPROFILEIMPORTTIME="1"),
    )
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.rstrip().endswith("| chunkwise._console") or "Traceback" in line:
            break
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    err = "".join(
        line
        for line in [*lines, *rest.splitlines(True)]
        if not line.startswith("import time:")
    )
    assert "Traceback" not in err, err
    assert process.returncode == 130, err
    assert _one_line(err) == "chunkwise: cancelled (SIGINT)"


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A volume whose median run takes a few seconds, and its scipy result."""
    path = tmp_path_factory.mktemp("big") / "in.zarr"
    data = synthetic_ct((112, 112, 112), seed=3)
    zarr.create_array(path, data=data, chunks=(32, 32, 32))
    return path, ndimage.median_filter(data, 5)


def _ledger_count(out: Path) -> int:
    ledger = out / "chunkwise-ledger"
    if not ledger.is_dir():
        return 0
    return sum(1 for p in ledger.iterdir() if not p.name.endswith(".partial"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "jobs"),
    [(signal.SIGTERM, 1), (signal.SIGHUP, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGTERM-2-jobs"],
)
def test_a_signal_cancels_the_run_resumably(big, tmp_path, signum, jobs):
    source, expected = big
    out = tmp_path / "out.zarr"
    args = (
        "run", source, out, "--op", "median:size=5", "-j", jobs,
        "--chunks", "32,32,32", "--block", "32,32,32", "--quiet",
    )  # fmt: skip
    process = _start(*args)
    deadline = time.monotonic() + 60
    while _ledger_count(out) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, err
    assert _one_line(err) == (
        f"chunkwise: cancelled ({name}); run again with --resume to finish"
    )
    record = zarr.open_array(out, mode="r").attrs["chunkwise"]
    assert record["status"] == "cancelled"
    assert _ledger_count(out) < 64, "the run finished before the signal"

    code, _, err = _run(*args, "--resume")
    assert code == 0, err
    result = zarr.open_array(out, mode="r")
    assert result.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(result[:], expected)


def test_sighup_ignored_by_nohup_stays_ignored(tmp_path):
    # nohup starts a command with SIGHUP ignored: chunkwise must not undo that.
    nohup = shutil.which("nohup")
    if nohup is None:
        pytest.skip("nohup is not installed")
    process = subprocess.Popen(
        [nohup, *COMMAND, "info", tmp_path / "nope.zarr"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    time.sleep(0.2)  # start-up: the handlers are in place, zarr is loading
    process.send_signal(signal.SIGHUP)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert "not found" in err.splitlines()[-1]
