"""An output's location: what is there, who holds it, and replacing it safely.

A run claims its output before writing anything. It takes an exclusive lock in the
output directory (`OutputLock`), refuses to replace what chunkwise did not make, and
replaces an old output by first renaming it aside, so that a run killed during the
replacement leaves either the old output or a new one, and a recognisable heap of
trash, never a half-deleted folder. Writers check a `Fence` before writing, so that
stray workers of a dead run never write into the run that replaced it.

Locks and fences apply to local directories; object stores and in-memory stores
have neither (see the README).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import gc
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr
from zarr.storage import LocalStore

from chunkwise._store import ATTRIBUTE, LEDGER, Status, now, open_output
from chunkwise._zarr_compat import sync
from chunkwise.errors import BlockError, ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LOCK",
    "Claim",
    "Fence",
    "Found",
    "OutputLock",
    "claim_output",
    "effective_status",
    "inspect_output",
    "process_gone",
    "process_identity",
]

#: The lock file in an output directory: a JSON record of the run holding it.
LOCK = "chunkwise.lock"
#: What an old output is renamed to while it is deleted: ``.NAME.chunkwise-trash-ID``
#: beside it, or ``.chunkwise-trash-ID`` inside it when it is a mount point.
TRASH = "chunkwise-trash-"
_METADATA = ("zarr.json", ".zarray", ".zattrs", ".zgroup")


def reason(error: OSError, where: Any = None) -> str:
    """``path: reason`` for an OS error, in one line (``where`` if it names none)."""
    where = error.filename or where or ""
    what = error.strerror or str(error) or type(error).__name__
    return f"{where}: {what}" if where else what


# --- which process ----------------------------------------------------------------


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[19])


def process_identity() -> dict[str, Any]:
    """The pid, host and start time of the current process, for runs and locks."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "pid_started": _start_ticks(pid)}


def process_gone(record: Mapping[str, Any]) -> bool | None:
    """Whether the process a record names has ended; None if it ran on another host.

    A pid reused by a later process counts as gone: the start time differs.
    """
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    started = record.get("pid_started")
    now = _start_ticks(pid)
    return started is not None and now is not None and now != started


def effective_status(record: Mapping[str, Any]) -> str:
    """An output's status, with a ``running`` run whose process is gone as such.

    A run killed with ``kill -9``, or whose process crashed, cannot record how it
    ended: its status stays ``running``. Its recorded process tells.
    """
    status = str(record.get("status", "unknown"))
    process = record.get("process")
    if status == "running" and isinstance(process, dict) and process_gone(process):
        return (
            f"interrupted (its process {process.get('pid')} on {process.get('host')} "
            "is gone; resume to finish)"
        )
    return status


def output_status(out: Any) -> Status | None:
    """Where the chunkwise output at ``out`` stands; None if there is none.

    Parameters
    ----------
    out : str, os.PathLike, zarr store, zarr.Array or zarr.Group
        An output location: a plain array or an OME-Zarr image.

    Returns
    -------
    Status or None
        The recorded status, ``INTERRUPTED`` for a ``running`` run whose process is
        gone; None where there is no output, or none that chunkwise wrote.
    """
    try:
        record = open_output(out).provenance
    except ChunkwiseError:
        return None
    try:
        status = Status(record.get("status"))
    except ValueError:
        return None
    process = record.get("process")
    if status is Status.RUNNING and isinstance(process, dict) and process_gone(process):
        return Status.INTERRUPTED
    return status


# --- the lock ---------------------------------------------------------------------


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


#: How long a refused run waits for the holder to write its name into the lock file.
HOLDER_WAIT = 2.0


def _read_holder(path: Path) -> dict[str, Any]:
    """The record of the run holding the lock at ``path``.

    A run that has just taken the lock writes its record a moment later: until then
    the file is empty, or still names the run before it (one killed with ``kill
    -9`` leaves its record). Wait a little for a record whose process is alive.
    """
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        record = _read_record(path)
        if (record and not process_gone(record)) or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def _describe_holder(record: Mapping[str, Any]) -> str:
    if not record:
        return "another run"
    return (
        f"run {record.get('run_id', '?')} (pid {record.get('pid', '?')} on "
        f"{record.get('host', '?')}, since {record.get('since', '?')})"
    )


class OutputLock:
    """An exclusive lock on an output directory, held for a run's lifetime.

    The lock file holds the run's id, pid and host for people and fences to read;
    the lock itself is a `flock` on it, which the kernel releases when the process
    ends in any way, ``kill -9`` included, so a dead run's lock is never in the way.
    """

    def __init__(self, root: Path, record: dict[str, Any]) -> None:
        self.root = root
        self.path = root / LOCK
        self.record = record
        self._fd: int | None = None

    @property
    def run_id(self) -> str:
        """The id of the run holding the lock."""
        return str(self.record["run_id"])

    def acquire(self) -> OutputLock:
        """Take the lock, or raise `ChunkwiseError` naming the run that holds it."""
        collected = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise ChunkwiseError(
                    f"cannot write to the output: {reason(error, self.path)}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = _read_holder(self.path)
                if holder.get("pid") == os.getpid() and not collected:
                    # A run of this process that was dropped without being
                    # closed: collecting it lets go of its lock.
                    collected = True
                    gc.collect()
                    continue
                raise ChunkwiseError(
                    f"the output {self.root} is in use by {_describe_holder(holder)}; "
                    "wait for it to "
                    "finish or cancel it"
                ) from None
            # Its last holder may have removed the file between our open and flock.
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(self.record).encode())
        except OSError as error:
            os.close(fd)
            raise ChunkwiseError(
                f"cannot write to the output: {reason(error, self.path)}"
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and let go (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()
        os.close(fd)

    def fence(self) -> Fence:
        """What writers check to know that this run still owns the output."""
        return Fence(self.path, self.run_id, os.getpid())


_WATCHED: set[int] = set()


def _exit_with(parent: int) -> None:
    """End this worker process once ``parent`` is gone (a killed run's workers)."""
    while os.getppid() == parent:
        time.sleep(0.25)
    os._exit(70)


@dataclass(frozen=True)
class Fence:
    """Lets a writer check that its run still owns the output (picklable).

    A run killed with ``kill -9`` leaves its worker processes behind, and a run
    started with ``--overwrite`` on the same path takes the lock. The fence stops
    the old workers from writing into it: in a worker process, a watchdog ends the
    process within a quarter second of the run's death, and every chunk write first
    checks that the lock file still names this run.
    """

    path: Path
    run_id: str
    #: The run's process, whose child processes end with it; None: the writers are
    #: not its children (a dask cluster's workers), only the lock file fences them.
    driver: int | None

    def check(self) -> None:
        """Raise `BlockError` if another run took the output over (or it is gone)."""
        if (
            self.driver is not None
            and os.getpid() != self.driver
            and self.driver not in _WATCHED
        ):
            _WATCHED.add(self.driver)
            if os.getppid() != self.driver:
                os._exit(70)
            threading.Thread(
                target=_exit_with, args=(self.driver,), daemon=True
            ).start()
        if _read_record(self.path).get("run_id") != self.run_id:
            raise BlockError(
                f"the output {self.path.parent} was removed or taken over by another "
                "run; this run stops"
            )


# --- what is at the output location ----------------------------------------------


class Found(enum.Enum):
    """What an output location holds."""

    NOTHING = "nothing"
    #: An empty directory, or only the debris of a chunkwise output whose creation
    #: was interrupted (a lock, a ledger, trash): nothing to lose.
    EMPTY = "empty"
    CHUNKWISE = "a Zarr array made by chunkwise"
    #: A chunkwise output whose metadata cannot be read.
    BROKEN = "a chunkwise output with unreadable metadata"
    FOREIGN = "a Zarr array not made by chunkwise"
    OTHER = "something that is not a Zarr array"


@dataclass
class Existing:
    """The result of `inspect_output`."""

    found: Found
    #: What holds the record: the array, or an OME-Zarr image's group.
    array: zarr.Array | zarr.Group | None = None
    detail: str = ""
    #: For `Found.EMPTY`: the names to clear before the directory is used.
    leftovers: list[str] = field(default_factory=list)


_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")
_INNER_TRASH = re.compile(rf"\.{TRASH}[0-9a-f]{{16}}")
_CHUNK_KEY = re.compile(r"c|\d+(\.\d+)*")
#: A file system's own entry at a mount point's root: never chunkwise's to remove.
_IGNORED = ("lost+found",)


def _holds_chunkwise_metadata(folder: Path) -> bool:
    for name in _METADATA:
        with contextlib.suppress(OSError):
            if f'"{ATTRIBUTE}"' in (folder / name).read_text(errors="replace"):
                return True
    return False


def _is_lock_file(path: Path) -> bool:
    """A chunkwise lock file: a run's record, or empty if it was killed making it."""
    with contextlib.suppress(OSError):
        if path.is_file() and not path.is_symlink():
            if path.stat().st_size == 0:
                return True
            record = _read_record(path)
            return "run_id" in record and "pid" in record
    return False


def _is_trash(path: Path) -> bool:
    """An in-place trash folder: empty, or holding a chunkwise output's metadata."""
    with contextlib.suppress(OSError):
        if (
            _INNER_TRASH.fullmatch(path.name)
            and path.is_dir()
            and not path.is_symlink()
        ):
            return not os.listdir(path) or _holds_chunkwise_metadata(path)
    return False


def _is_ledger(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.is_dir() and all(n.isdigit() for n in os.listdir(path))
    return False


def _is_bare_level(path: Path) -> bool:
    """A pyramid level made before its image's group: metadata and nothing else."""
    with contextlib.suppress(OSError):
        if path.name.isdigit() and path.is_dir() and not path.is_symlink():
            return all(_is_metadata(name) for name in os.listdir(path))
    return False


def _is_metadata(name: str) -> bool:
    """A metadata key, or zarr's temporary file of one being written.

    zarr's local store writes a file under a temporary name (``NAME.<uuid>.partial``)
    and renames it: a process killed in between leaves that file behind.
    """
    return name in _METADATA or bool(_PARTIAL.fullmatch(name))


def _leftovers(root: Path, names: list[str]) -> list[str] | None:
    """What to clear where no array is but chunkwise's leftovers; None if not so.

    Only a chunkwise lock file or in-place trash folder proves a folder is
    chunkwise's; then a ledger, ``.partial`` files and pyramid levels made before
    their group (metadata alone) are its leftovers too, and,
    where a replacement in place (of a mount point) was killed after moving the
    metadata into its trash, the old output's chunk keys. Anything else, or no
    proof, and the folder is not chunkwise's to clear.
    """
    names = [n for n in names if n not in _IGNORED]
    lock = LOCK in names and _is_lock_file(root / LOCK)
    trash = [n for n in names if _is_trash(root / n)]
    if names and not (lock or trash):
        return None
    interrupted = any(_holds_chunkwise_metadata(root / n) for n in trash)
    leftovers = []
    for name in names:
        path = root / name
        if name == LOCK and lock:
            continue
        if (
            name in trash
            or (name == LEDGER and _is_ledger(path))
            or (_PARTIAL.fullmatch(name) and path.is_file())
            or (lock and _is_bare_level(path))
            or (interrupted and _CHUNK_KEY.fullmatch(name))
        ):
            leftovers.append(name)
        else:
            return None
    return leftovers


def local_root(store: Any) -> Path | None:
    """The directory of a local output store, None for other stores."""
    # Through symlinks: replacing an output replaces what the link points to.
    return Path(store.root).resolve() if isinstance(store, LocalStore) else None


def inspect_output(store: Any, *, locked: bool = False) -> Existing:
    """Look at what the output location holds, without changing anything.

    ``locked``: the caller holds the lock, so a lock file there proves nothing.
    """
    root = local_root(store)
    if root is not None:
        if root.is_file() or (root.exists() and not root.is_dir()):
            return Existing(Found.OTHER, detail=f"{root} is a file")
        if not root.exists():
            return Existing(Found.NOTHING)
        try:
            names = os.listdir(root)
        except OSError as error:
            raise ChunkwiseError(
                f"cannot read the output: {reason(error, root)}"
            ) from None
        if not any(n in _METADATA for n in names):
            leftovers = _leftovers(root, names)
            if leftovers is not None:
                return Existing(Found.EMPTY, leftovers=leftovers)
            return Existing(Found.OTHER, detail=f"{root} is not a Zarr array")
        # By what is inside them, not by name: a user's file named like the lock
        # proves nothing (issue 9).
        ours = (LEDGER in names and _is_ledger(root / LEDGER)) or (
            LOCK in names and not locked and _is_lock_file(root / LOCK)
        )
    else:
        ours = False
    try:
        node = zarr.open(store=_read_only(store), mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeNotFoundError):
        if root is None and _has_keys(store):
            # An object-store prefix holding other objects: a run would write
            # its array among them (locally, that is a folder that is not Zarr).
            return Existing(Found.OTHER, detail="objects that are not a Zarr array")
        return Existing(Found.NOTHING)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}".splitlines()[0]
        return Existing(Found.BROKEN if ours else Found.OTHER, detail=detail)
    if not isinstance(node, zarr.Array):
        from chunkwise._store import Output

        # An OME-Zarr image is an output too: its group holds the record.
        try:
            Output.of(node)
        except ChunkwiseError as error:
            # The caller who holds the lock looked before taking it.
            proof = root is not None and (
                locked or (LOCK in names and _is_lock_file(root / LOCK))
            )
            if proof and not node.attrs.asdict():
                # Killed while its levels were made, before the group's metadata.
                rest = [n for n in names if n != LOCK]
                if all(_is_metadata(n) or _is_bare_level(root / n) for n in rest):
                    return Existing(Found.EMPTY, leftovers=rest)
            if (
                ours
                or (root is not None and _holds_chunkwise_metadata(root))
                or (root is None and ATTRIBUTE in node.attrs)
            ):
                # Remote: killed while its levels were made, after the group.
                return Existing(Found.BROKEN, detail=str(error))
            return Existing(Found.OTHER, detail="it holds a Zarr group, not an image")
    record = node.attrs.get(ATTRIBUTE)
    if not isinstance(record, dict) or not record:
        return Existing(Found.BROKEN if ours else Found.FOREIGN, node)
    return Existing(Found.CHUNKWISE, node)


def _has_keys(store: Any) -> bool:
    """Whether a store (not a local one) holds anything, from one listing page."""

    async def first() -> bool:
        async for _ in store.list_dir(""):
            return True
        return False

    try:
        return sync(first())
    except (FileNotFoundError, NotImplementedError):
        return False


def _read_only(store: Any) -> Any:
    if isinstance(store, LocalStore):
        return LocalStore(store.root, read_only=True)
    return store


# --- claiming ---------------------------------------------------------------------


@dataclass
class Claim:
    """An output location a run owns: its lock, and the old output being deleted."""

    root: Path | None
    lock: OutputLock | None
    #: Whether this claim made the directory (removed again if the run never starts).
    made: bool = False
    trash: list[Path] = field(default_factory=list)

    def fence(self) -> Fence | None:
        """The fence for this run's writers (None where outputs have no lock)."""
        return None if self.lock is None else self.lock.fence()

    def purge(self) -> None:
        """Delete the old output that was renamed aside."""
        while self.trash:
            shutil.rmtree(self.trash.pop(), ignore_errors=True)

    def release(self) -> None:
        """Let go of the output (idempotent)."""
        if self.lock is not None:
            self.lock.release()

    def abandon(self) -> None:
        """Undo a claim whose run never started: remove what it made.

        An old output it had renamed aside goes back in place.
        """
        root = self.root
        if self.made and root is not None and self.lock is not None:
            with contextlib.suppress(OSError):
                for name in _leftovers(root, os.listdir(root)) or []:
                    _remove(root / name)
                self.lock.release()
                root.rmdir()
        self.release()
        for trash in self.trash:
            if root is not None and trash.parent == root.parent:
                with contextlib.suppress(OSError):
                    os.rename(trash, root)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def claim_output(
    store: Any,
    found: Existing,
    *,
    run_id: str,
    replace: bool,
) -> Claim:
    """Take ownership of the output location before anything is written to it.

    The caller has decided from ``found`` that what is there may be used:
    ``replace`` it (overwrite), or resume it. Raises `ChunkwiseError` without
    changing anything if the location is locked, or changed since ``found``.
    """
    root = local_root(store)
    if root is None:
        _check_not_running(found)
        return Claim(None, None)
    record = process_identity() | {"run_id": run_id, "since": now()}
    if found.found is Found.NOTHING:
        claim = _claim_new(root, record)
    else:
        claim = Claim(root, OutputLock(root, record).acquire())
    try:
        if found.found is not Found.NOTHING:
            _prepare(claim, store, found, replace=replace)
        _purge_siblings(root, keep=claim.trash)
    except OSError as error:
        claim.abandon()
        raise ChunkwiseError(
            f"cannot prepare the output: {reason(error, root)}"
        ) from None
    except BaseException:
        claim.abandon()
        raise
    return claim


def _check_not_running(found: Existing) -> None:
    """Refuse an output without a lock (an object store) that a live run writes.

    Only a run of another process on this host is known to be alive; one on
    another host may be, and is not refused (see the README).
    """
    if found.found is not Found.CHUNKWISE or found.array is None:
        return
    record = found.array.attrs.get(ATTRIBUTE)
    record = record if isinstance(record, dict) else {}
    process = record.get("process")
    if (
        record.get("status") == Status.RUNNING.value
        and isinstance(process, dict)
        and process.get("pid") != os.getpid()
        and process_gone(process) is False
    ):
        raise ChunkwiseError(
            f"the output is being written by run {record.get('run_id', '?')} (pid "
            f"{process.get('pid')} on this host, since {record.get('started', '?')}); "
            "an object store has no lock: wait for it to finish or cancel it"
        )


def _prepare(claim: Claim, store: Any, found: Existing, *, replace: bool) -> None:
    """Under the lock, make the existing directory ready for the run."""
    root = claim.root
    assert root is not None
    # Look again: another run may have changed it meanwhile.
    again = inspect_output(store, locked=True)
    if again.found is not found.found:
        raise ChunkwiseError(
            f"the output {root} changed while this run started; try again"
        )
    if found.found is Found.EMPTY:
        # Nothing of value: an empty directory (a mount point, say) is used as it
        # is, and the debris of an interrupted creation is cleared.
        for name in again.leftovers:
            _remove(root / name)
    elif replace:
        _set_aside(claim)
    else:
        claim.trash.extend(root / n for n in os.listdir(root) if _is_trash(root / n))


def _claim_new(root: Path, record: dict[str, Any]) -> Claim:
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ChunkwiseError(
            f"cannot create the output's folder: {reason(error, root.parent)}"
        ) from None
    try:
        root.mkdir()
    except FileExistsError:
        raise ChunkwiseError(
            f"the output {root} appeared while this run started; try again"
        ) from None
    except OSError as error:
        raise ChunkwiseError(
            f"cannot create the output: {reason(error, root)}"
        ) from None
    # Another run may take the new folder's lock first; then it is that run's, and
    # this one only reports it.
    return Claim(root, OutputLock(root, record).acquire(), made=True)


def _unheld(folder: Path) -> bool:
    """Whether no live run holds the lock file in ``folder`` (or there is none)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _purge_siblings(root: Path, keep: list[Path]) -> None:
    """Delete old outputs of this path that killed runs left renamed aside.

    Only trash named for this path and a run id, and whose lock no live run holds
    (a run replacing the output holds the old one's until its new one is ready),
    and not this run's own, in ``keep``.
    """
    pattern = re.compile(rf"\.{re.escape(root.name)}\.{TRASH}[0-9a-f]{{16}}")
    with contextlib.suppress(OSError):
        for entry in root.parent.iterdir():
            if (
                pattern.fullmatch(entry.name)
                and entry not in keep
                and entry.is_dir()
                and not entry.is_symlink()
                and _unheld(entry)
            ):
                shutil.rmtree(entry, ignore_errors=True)


def _set_aside(claim: Claim) -> None:
    """Move the old output out of the way in one rename, keeping the lock held.

    The old directory (with the lock this run holds) is renamed beside itself and
    a new directory with a new lock takes its place. A mount point cannot be
    renamed: then its entries move into a trash directory inside it, metadata
    first, so that an interruption leaves no array there, only trash.
    """
    root, old = claim.root, claim.lock
    assert root is not None and old is not None
    trash = root.parent / f".{root.name}.{TRASH}{old.run_id}"
    try:
        os.rename(root, trash)
    except OSError as error:
        if error.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES):
            raise ChunkwiseError(
                f"cannot replace the output: {reason(error, root)}"
            ) from None
        _empty_in_place(claim)
        return
    claim.trash.append(trash)
    fresh = _claim_new(root, dict(old.record))
    # The old lock now lives in the trash: let go of it there.
    old.path = trash / LOCK
    old.release()
    claim.lock, claim.made = fresh.lock, True


def _empty_in_place(claim: Claim) -> None:
    root = claim.root
    assert root is not None and claim.lock is not None
    trash = root / f".{TRASH}{claim.lock.run_id}"
    try:
        trash.mkdir(exist_ok=True)
        names = sorted(os.listdir(root), key=lambda n: (n not in _METADATA, n))
        for name in names:
            if name == LOCK or name == trash.name:
                continue
            os.rename(root / name, trash / name)
    except OSError as error:
        raise ChunkwiseError(
            f"cannot replace the output: {reason(error, root)}"
        ) from None
    claim.trash.append(trash)


def new_run_id() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex[:16]
