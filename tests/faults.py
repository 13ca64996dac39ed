"""Fault injection for the issue-9 tests: real mounts, servers, processes and kills.

Test modules import helpers as ``from faults import ...`` (``tests/`` is on
``sys.path`` through the rootdir conftest) and get the fixtures (`tmpfs`, `mounts`,
`http_server`, `slow_op`, `volume`, `reference`, and the autouse `reap_started`)
with ``from faults import *`` (`__all__` lists exactly the fixtures).

Nothing here knows the expected result of a run: tests compare against an
uninterrupted chunkwise run and scipy.ndimage on the whole array.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise._sample import write_synthetic_ct

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "http_server",
    "mounts",
    "reap_started",
    "reference",
    "slow_op",
    "tmpfs",
    "volume",
]

ROOT = Path(__file__).resolve().parents[1]
#: The installed console script does ``sys.exit(main())``; so does ``-m``.
CLI = (sys.executable, "-m", "chunkwise.cli")

#: The test volume: 6 x 6 x 6 chunks of 16**3, so 216 one-chunk blocks.
SHAPE = (96, 96, 96)
CHUNKS = (16, 16, 16)
BLOCKS = 6 * 6 * 6
LAYOUT = ("--chunks", "16,16,16", "--block", "16,16,16", "-j", "2", "--quiet")
FAST_OP = "median:size=3"
#: The same median through a custom function that sleeps FAULTS_DELAY per block.
SLOW_OP = "custom:function=faults_slowmod:slow_median,halo=1"
SLOW_SOURCE = '''\
"""A median that takes its time, so that a run lasts long enough to be hurt."""

import os
import time

from scipy import ndimage


def slow_median(block):
    time.sleep(float(os.environ.get("FAULTS_DELAY", "0")))
    return ndimage.median_filter(block, 3)
'''


# --------------------------------------------------------------------------- CLI


@dataclass
class Result:
    """A finished command: its exit code and what it printed."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (
            f"chunkwise {' '.join(self.args[3:])} -> exit {self.code}\n"
            f"--- stdout\n{self.out}--- stderr\n{self.err}"
        )


def cli_env(pythonpath: tuple[os.PathLike | str, ...] = (), **extra: str) -> dict:
    """The environment for a chunkwise subprocess: the repository on PYTHONPATH."""
    paths = [*map(str, pythonpath), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env = dict(os.environ)
    env.pop("COVERAGE_PROCESS_START", None)
    return env | {"PYTHONPATH": os.pathsep.join(paths)} | extra


def run_cli(
    *args: os.PathLike | str,
    cwd: os.PathLike | str | None = None,
    env: dict | None = None,
    timeout: float = 120,
) -> Result:
    """Run ``chunkwise ARGS`` to the end in a new process."""
    argv = (*CLI, *map(str, args))
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(argv, done.returncode, done.stdout, done.stderr)


class Started:
    """A chunkwise process running in the background; output goes to files."""

    def __init__(self, args: tuple[str, ...], cwd: Any, env: dict) -> None:
        self.args = args
        logs = Path(tempfile.mkdtemp(prefix="faults-log-"))
        self._logs = logs
        with (logs / "out").open("wb") as out, (logs / "err").open("wb") as err:
            self.popen = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )
        self.pid = self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> int:
        """SIGKILL the process (the driver only, as ``kill -9 PID``) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout=30)

    def finish(self, timeout: float = 120) -> Result:
        """Wait for the end; the result with everything it printed."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise
        result = Result(
            self.args,
            code,
            (self._logs / "out").read_text(errors="replace"),
            (self._logs / "err").read_text(errors="replace"),
        )
        shutil.rmtree(self._logs, ignore_errors=True)
        return result

    def cleanup(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)
        shutil.rmtree(self._logs, ignore_errors=True)


_started: list[Started] = []


def start_cli(
    *args: os.PathLike | str,
    cwd: os.PathLike | str | None = None,
    env: dict | None = None,
) -> Started:
    """Start ``chunkwise ARGS`` in the background (its own session, for kill tests).

    Anything still running at the end of the test is killed by `reap_started`.
    """
    started = Started(
        (*CLI, *map(str, args)), cwd, env if env is not None else cli_env()
    )
    _started.append(started)
    return started


@pytest.fixture(autouse=True)
def reap_started() -> Iterator[None]:
    """Kill (whole process group) whatever a test started and left running."""
    yield
    while _started:
        _started.pop().cleanup()


def assert_one_line_error(result: Result, *needles: str) -> str:
    """No traceback, exactly one non-empty stderr line, containing every needle.

    Needles are matched case-insensitively. Returns the line.
    """
    assert "Traceback" not in result.err, str(result)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line\n{result}"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} missing\n{result}"
    return lines[0]


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60,
    interval: float = 0.005,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------- output state


def status_of(out: os.PathLike | str) -> str | None:
    """The chunkwise status recorded in an output, or None if it has none."""
    try:
        array = zarr.open_array(out, mode="r")
    except Exception:
        return None
    return dict(array.attrs.get("chunkwise", {})).get("status")


def ledger_count(out: os.PathLike | str) -> int:
    """Finished blocks in an output's ledger (temporary ``.partial`` keys ignored)."""
    try:
        names = os.listdir(Path(out) / "chunkwise-ledger")
    except OSError:
        return 0
    return sum(name.isdigit() for name in names)


def tree_digest(path: os.PathLike | str) -> str:
    """SHA-256 over every entry's relative path, kind and bytes under ``path``.

    A file gives its bytes, a symlink its target, a directory its name: equal
    digests mean the tree is byte-identical.
    """
    root = Path(path)
    digest = hashlib.sha256()
    if not root.exists() and not root.is_symlink():
        return "absent"
    if root.is_file():
        return hashlib.sha256(b"file\0" + root.read_bytes()).hexdigest()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            entry = Path(folder, name)
            relative = entry.relative_to(root).as_posix().encode()
            if entry.is_symlink():
                digest.update(
                    b"link\0" + relative + b"\0" + os.readlink(entry).encode()
                )
            elif entry.is_dir():
                digest.update(b"dir\0" + relative + b"\0")
            else:
                data = entry.read_bytes()
                digest.update(b"file\0" + relative + b"\0%d\0" % len(data) + data)
    return digest.hexdigest()


def chunk_files(out: os.PathLike | str) -> list[Path]:
    """The chunk files of a Zarr v3 output (under ``c/``), sorted."""
    return sorted(p for p in (Path(out) / "c").rglob("*") if p.is_file())


def chunk_names(path: Path, out: os.PathLike | str) -> list[str]:
    """Ways a report may name the chunk stored in ``path``: key and index forms."""
    parts = path.relative_to(Path(out) / "c").parts
    return [
        "/".join(parts),
        "(" + ", ".join(parts) + ")",
        ",".join(parts),
        ".".join(parts),
        "[" + ", ".join(parts) + "]",
    ]


def read_array(path: os.PathLike | str) -> np.ndarray:
    return zarr.open_array(path, mode="r")[:]


def assert_same_array(path: os.PathLike | str, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(read_array(path), expected)


# ---------------------------------------------------------------- volumes, ops


@dataclass
class Volume:
    """The input volume on disk and what a correct run of `FAST_OP` gives."""

    path: Path
    data: np.ndarray
    #: scipy.ndimage.median_filter(data, 3) on the whole array.
    scipy: np.ndarray
    #: An uninterrupted chunkwise run with the same layout, in memory.
    clean: np.ndarray = field(repr=False)

    def check(self, out: os.PathLike | str) -> None:
        """``out`` is complete and equal to the clean run and to scipy."""
        assert status_of(out) == "complete"
        result = read_array(out)
        np.testing.assert_array_equal(result, self.clean)
        np.testing.assert_array_equal(result, self.scipy)


def write_input(path: os.PathLike | str, seed: int = 0) -> np.ndarray:
    """Write the sample volume (in process, to save a CLI start) and return it."""
    return write_synthetic_ct(path, SHAPE, chunks=CHUNKS, seed=seed)[:]


def clean_run(path: os.PathLike | str, op: str = FAST_OP) -> np.ndarray:
    """An uninterrupted chunkwise run of ``op`` over ``path``, in memory."""
    result = chunkwise.process(
        os.fspath(path),
        chunkwise.ops.parse(op),
        None,
        n_jobs=2,
        chunks=CHUNKS,
        block=CHUNKS,
    )
    return result[:]


_cache: dict[str, Any] = {}


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Volume:
    """The sample input once per session, with its scipy and chunkwise results."""
    # Each module that star-imports the fixture has its own copy: compute once.
    if "reference" not in _cache:
        path = tmp_path_factory.mktemp("reference") / "in.zarr"
        data = write_input(path)
        _cache["reference"] = Volume(
            path, data, ndimage.median_filter(data, 3), clean_run(path)
        )
    return _cache["reference"]


@pytest.fixture
def volume(tmp_path: Path, reference: Volume) -> Volume:
    """A private copy of the sample input in ``tmp_path/in.zarr``."""
    path = tmp_path / "in.zarr"
    shutil.copytree(reference.path, path)
    return Volume(path, reference.data, reference.scipy, reference.clean)


@pytest.fixture(scope="session")
def slow_op(tmp_path_factory) -> Callable[..., dict]:
    """``env(delay)``: the environment in which `SLOW_OP` sleeps ``delay`` a block."""
    if "slowmod" not in _cache:
        _cache["slowmod"] = tmp_path_factory.mktemp("slowmod")
        (_cache["slowmod"] / "faults_slowmod.py").write_text(SLOW_SOURCE)
    folder = _cache["slowmod"]

    def env(delay: float = 0.02, **extra: str) -> dict:
        return cli_env((folder,), FAULTS_DELAY=str(delay), **extra)

    return env


def run_args(source: Any, out: Any, *extra: str, op: str = FAST_OP) -> tuple:
    """Arguments of ``chunkwise run`` in the standard layout."""
    return ("run", str(source), str(out), "--op", op, *LAYOUT, *extra)


# ---------------------------------------------------------------------- mounts


def _root_or_skip(what: str) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(f"{what} needs root")
    if shutil.which("mount") is None:
        pytest.skip(f"{what} needs the mount command")


class Mounts:
    """Mounts made by one test, unmounted (lazily if busy) at its end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.points: list[Path] = []

    def _mount(self, argv: list[str], point: Path, what: str) -> Path:
        _root_or_skip(what)
        point.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"{what} failed here: {done.stderr.strip()}")
        self.points.append(point)
        return point

    def tmpfs(
        self, size: str = "256k", nr_inodes: int | None = None, ro: bool = False
    ) -> Path:
        """A fresh tmpfs of ``size`` (and ``nr_inodes``), optionally read-only."""
        point = self.base / f"tmpfs{len(self.points)}"
        options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
        argv = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)]
        self._mount(argv, point, "mounting a tmpfs")
        if ro:
            self.remount(point, "ro")
        return point

    def bind(self, source: Path, point: Path | None = None) -> Path:
        """``mount --bind source point``: the same folder under a second path."""
        point = point or self.base / f"bind{len(self.points)}"
        argv = ["mount", "--bind", str(source), str(point)]
        return self._mount(argv, point, "a bind mount")

    @staticmethod
    def remount(point: Path, mode: str) -> None:
        """``mount -o remount,ro`` (or ``rw``)."""
        subprocess.run(["mount", "-o", f"remount,{mode}", str(point)], check=True)

    def close(self) -> None:
        for point in reversed(self.points):
            done = subprocess.run(["umount", str(point)], capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
        self.points.clear()


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    """Make tmpfs and bind mounts under ``tmp_path``; all unmounted at teardown.

    Skips (saying why) when not root or when mounting fails.
    """
    base = tmp_path / "mnt"
    base.mkdir()
    made = Mounts(base)
    yield made
    made.close()


@pytest.fixture
def tmpfs(mounts: Mounts) -> Callable[..., Path]:
    """``tmpfs(size="256k", nr_inodes=None, ro=False)`` mounts a fresh tmpfs."""
    return mounts.tmpfs


def remount_ro(point: Path) -> None:
    Mounts.remount(point, "ro")


def remount_rw(point: Path) -> None:
    Mounts.remount(point, "rw")


# ----------------------------------------------------------------- HTTP server

_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def is_chunk_request(path: str) -> bool:
    """Whether a URL path asks for chunk data (anything but Zarr metadata)."""
    name = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return bool(name) and name not in _METADATA


class FaultyServer:
    """A directory served over HTTP on 127.0.0.1, misbehaving on demand.

    ``mode`` switches at runtime:

    - ``"ok"``: serve files;
    - ``"stall"``: chunk requests hang (until `stall_seconds` or teardown);
    - ``"404"``: chunk requests whose path is in `missing` get 404, and so does
      every chunk request after the first `fail_after` (when set);
    - ``"die"``: set by `die`, the server is shut down and its sockets closed.

    `revive` serves again on the same port (so the URL does not change).
    """

    def __init__(self, root: Path, mode: str = "ok", port: int = 0) -> None:
        self.root = Path(root)
        self.mode = mode
        self.missing: set[str] = set()
        self.fail_after: int | None = None
        self.stall_seconds = 300.0
        self.chunk_requests = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_of(self, relative: str) -> str:
        return f"{self.url}/{relative}"

    def _handler(self) -> type[SimpleHTTPRequestHandler]:
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _fault(self) -> bool:
                """Answer with the current fault; True if the request is handled."""
                path = self.path.split("?", 1)[0].lstrip("/")
                chunk = is_chunk_request(path)
                with server._lock:
                    server.requests.append(path)
                    if chunk:
                        server.chunk_requests += 1
                    count = server.chunk_requests
                mode = server.mode
                if mode == "die":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return True
                if not chunk:
                    return False
                if mode == "stall":
                    server._release.wait(server.stall_seconds)
                    return False
                if mode == "404" and (
                    path in server.missing
                    or (server.fail_after is not None and count > server.fail_after)
                ):
                    self.send_error(404, "gone")
                    return True
                return False

            def do_GET(self) -> None:
                if not self._fault():
                    super().do_GET()

            def do_HEAD(self) -> None:
                if not self._fault():
                    super().do_HEAD()

        return Handler

    def _start(self) -> None:
        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up is not a test failure

        self._server = Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        self._release.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()

    def die(self) -> None:
        """Stop answering: shut the server down and close its listening socket."""
        self.mode = "die"
        self._stop()

    def revive(self) -> None:
        """Serve normally again, on the same port."""
        self._stop()
        self.mode = "ok"
        self._start()

    def _stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@pytest.fixture
def http_server() -> Iterator[Callable[..., FaultyServer]]:
    """``http_server(root, mode="ok")`` serves ``root``; all torn down at the end."""
    servers: list[FaultyServer] = []

    def start(root: os.PathLike | str, mode: str = "ok") -> FaultyServer:
        server = FaultyServer(Path(root), mode)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server._stop()
