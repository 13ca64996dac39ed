"""The fault injectors themselves work: a failing issue-9 test is never their fault."""

from __future__ import annotations

import errno
import socket
import time
import urllib.error
import urllib.request

import pytest

from faults import *  # noqa: F403 - the fixtures
from faults import (
    Result,
    assert_one_line_error,
    is_chunk_request,
    remount_ro,
    remount_rw,
    tree_digest,
)


def _get(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_http_server_switches_modes_at_runtime(tmp_path, http_server):
    (tmp_path / "a.zarr" / "c" / "0").mkdir(parents=True)
    (tmp_path / "a.zarr" / "zarr.json").write_text("{}")
    for name in ("0", "1"):
        (tmp_path / "a.zarr" / "c" / "0" / name).write_bytes(b"chunk")
    server = http_server(tmp_path)
    chunk0, chunk1 = (server.url_of(f"a.zarr/c/0/{n}") for n in "01")
    meta = server.url_of("a.zarr/zarr.json")
    assert is_chunk_request("a.zarr/c/0/0") and not is_chunk_request("a.zarr/zarr.json")
    assert _get(chunk0) == 200

    server.mode = "404"
    server.missing = {"a.zarr/c/0/1"}
    assert (_get(chunk0), _get(chunk1), _get(meta)) == (200, 404, 200)
    server.missing.clear()
    server.fail_after = server.chunk_requests + 1
    assert (_get(chunk0), _get(chunk0), _get(meta)) == (200, 404, 200)

    server.mode = "stall"
    server.stall_seconds = 0.3
    began = time.monotonic()
    assert _get(chunk0) == 200
    assert time.monotonic() - began >= 0.3
    server.stall_seconds = 30
    with pytest.raises((TimeoutError, urllib.error.URLError, socket.timeout)):
        _get(chunk0, timeout=0.3)

    port = server.port
    server.die()
    with pytest.raises(urllib.error.URLError):
        _get(meta, timeout=2)
    server.revive()
    assert server.port == port
    assert _get(chunk0) == 200


def test_tmpfs_runs_out_of_space_and_inodes_and_turns_read_only(tmpfs):
    small = tmpfs(size="16k")
    with pytest.raises(OSError) as full:
        (small / "big").write_bytes(b"\0" * 32768)
    assert full.value.errno == errno.ENOSPC
    few = tmpfs(size="1m", nr_inodes=4)
    with pytest.raises(OSError) as no_inode:
        for i in range(10):
            (few / str(i)).touch()
    assert no_inode.value.errno == errno.ENOSPC
    remount_ro(few)
    with pytest.raises(OSError) as read_only:
        (few / "new").touch()
    assert read_only.value.errno == errno.EROFS
    remount_rw(few)
    (few / "0").write_text("writable again")


def test_tree_digest_sees_every_byte_and_name(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_bytes(b"abc")
    before = tree_digest(tmp_path / "d")
    (tmp_path / "d" / "e" / "f").write_bytes(b"abd")
    changed = tree_digest(tmp_path / "d")
    (tmp_path / "d" / "e" / "f").write_bytes(b"abc")
    assert tree_digest(tmp_path / "d") == before != changed
    (tmp_path / "d" / "g").mkdir()
    assert tree_digest(tmp_path / "d") != before


def test_one_line_error_rejects_tracebacks_and_extra_lines():
    good = Result(("py", "-m", "chunkwise.cli"), 2, "", "chunkwise: error: no\n")
    assert assert_one_line_error(good, "NO") == "chunkwise: error: no"
    for err in ("Traceback (most recent call last):\n", "one\ntwo\n", ""):
        with pytest.raises(AssertionError):
            assert_one_line_error(Result(good.args, 2, "", err))
