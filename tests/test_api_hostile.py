"""Hostile arguments to the public API: one clear `ChunkwiseError`, never a raw one.

Issue 9: plan, compute_region, process and the operations, on real arrays and
stores, and a stalled HTTP server for the remote-input timeout.
"""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import numpy as np
import pytest
import zarr
from scipy import ndimage
from zarr.storage import MemoryStore

import chunkwise
from chunkwise import ops
from chunkwise._geometry import Box
from chunkwise._source import open_source
from chunkwise.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

VOLUME = np.arange(20 * 24 * 28, dtype=np.uint16).reshape(20, 24, 28)


def _message(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("op", "words"),
    [(None, "op must be an operation"), (3, "got 3"), (ops.gaussian, "got <class")],
    ids=["None", "int", "class"],
)
def test_an_op_that_is_not_an_operation(op, words):
    for call in (
        lambda: chunkwise.plan(VOLUME, op),
        lambda: chunkwise.compute_region(VOLUME, op, (0,)),
        lambda: chunkwise.process(VOLUME, op),
    ):
        with pytest.raises(chunkwise.ChunkwiseError) as error:
            call()
        assert words in _message(error) or "op must be" in _message(error)


def test_an_op_given_as_text_is_parsed():
    text = chunkwise.plan(VOLUME, "gaussian:sigma=2", n_jobs=1)
    assert text.op == ops.gaussian(2)
    assert (
        text.describe() == chunkwise.plan(VOLUME, ops.gaussian(2), n_jobs=1).describe()
    )
    plane = chunkwise.compute_region(VOLUME, "gaussian:sigma=1", (5,))
    np.testing.assert_array_equal(plane, ops.gaussian(1)(VOLUME)[5])
    with pytest.raises(chunkwise.ChunkwiseError, match="unknown operation 'blur'"):
        chunkwise.plan(VOLUME, "blur:sigma=1")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"chunks": "abc"}, "chunks must be a sequence"),
        ({"chunks": 8}, "chunks must be a sequence"),
        ({"chunks": (None, 8, 8)}, "chunks must be positive whole numbers"),
        ({"chunks": (True, 8, 8)}, "chunks must be positive whole numbers"),
        ({"chunks": (8.5, 8, 8)}, "chunks must be positive whole numbers"),
        ({"chunks": (float("nan"), 8, 8)}, "chunks must be positive whole numbers"),
        ({"shards": ("a", 8, 8)}, "shards"),
        ({"block": [0, 1, 1]}, "block must be positive"),
        ({"block": {"z": 8}}, "block must be positive"),
        ({"n_jobs": "2"}, "n_jobs"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"n_jobs": True}, "n_jobs"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else None,
)
def test_bad_layout_options_of_plan(options, words):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.plan(VOLUME, ops.invert(), **options)
    assert words in _message(error)


@pytest.mark.parametrize(
    "options",
    [{"chunks": "abc"}, {"block": [0, 1, 1]}, {"codec": 123}, {"n_jobs": "2"}],
    ids=repr,
)
def test_bad_options_of_process_write_nothing(tmp_path, options):
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.process(VOLUME, ops.invert(), out, **options)
    assert next(iter(options)) in _message(error)
    assert not out.exists()


def test_chunks_shards_and_blocks_beyond_the_volume_are_cut_to_it():
    plan = chunkwise.plan(VOLUME, ops.invert(), chunks=(99999,) * 3, n_jobs=1)
    assert plan.chunks == VOLUME.shape
    assert len(plan) == 1
    sharded = chunkwise.plan(
        VOLUME, ops.invert(), chunks=(8, 8, 8), shards=(64, 64, 64), n_jobs=1
    )
    assert sharded.chunks == (8, 8, 8)
    assert sharded.shards == (24, 24, 32)  # whole chunks covering (20, 24, 28)
    block = chunkwise.plan(
        VOLUME, ops.invert(), chunks=(99999,) * 3, block=(99999,) * 3, n_jobs=1
    )
    assert len(block) == 1
    result = chunkwise.process(VOLUME, ops.invert(), chunks=(99999,) * 3, n_jobs=1)
    assert result.chunks == VOLUME.shape
    np.testing.assert_array_equal(result[:], np.invert(VOLUME))


def test_absurd_outputs_and_block_counts_are_refused_before_writing(tmp_path):
    cube = zarr.create_array(MemoryStore(), shape=(120,) * 3, dtype="uint8")
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.process(cube, ops.upsample(1000), out)
    assert "(120000, 120000, 120000)" in _message(error)
    assert "2**50" in _message(error)
    assert not out.exists()
    huge = zarr.create_array(MemoryStore(), shape=(2**16,) * 3, dtype="uint8")
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.plan(huge, ops.invert(), chunks=(1, 1, 1), n_jobs=1)
    assert "2.81e+14 blocks" in _message(error)
    assert "2**31" in _message(error)


@pytest.mark.parametrize(
    ("op", "words"),
    [
        (ops.gaussian(1e6), "sigma 1e+06 needs a kernel reaching 4000000 voxels"),
        (ops.gaussian((1, 1, 1e6)), "along axis 2, more than twice its length 28"),
        (ops.median(999), "size 999 needs a kernel reaching 499 voxels along axis 0"),
        (ops.difference_of_gaussians(1, 500), "high 500"),
        (ops.unsharp_mask(100), "sigma 100"),
    ],
    ids=["gaussian", "per-axis", "median", "dog", "unsharp"],
)
def test_a_kernel_far_larger_than_the_volume_is_refused(tmp_path, op, words):
    out = tmp_path / "out.zarr"
    calls = (
        lambda: op(VOLUME),
        lambda: chunkwise.plan(VOLUME, op),
        lambda: chunkwise.compute_region(VOLUME, op, (0,)),
        lambda: chunkwise.process(VOLUME, op, out),
    )
    for call in calls:
        with pytest.raises(chunkwise.ChunkwiseError) as error:
            call()
        assert words in _message(error)
    assert not out.exists()


def test_each_step_of_a_chain_is_checked_against_its_own_input():
    long = np.zeros((200, 8, 8), np.uint8)
    window = ops.uniform((301, 1, 1))  # reaches 150: fine along 200 voxels
    assert chunkwise.plan(long, window).shape == long.shape
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.plan(long, ops.chain(ops.downsample((4, 1, 1)), window))
    assert "reaching 150 voxels along axis 0, more than twice its length 50" in (
        _message(error)
    )


def test_a_small_kernel_on_a_thin_axis_is_fine():
    plane = np.random.default_rng(0).random((1, 30, 30), dtype=np.float32)
    result = chunkwise.process(plane, ops.gaussian(3), n_jobs=1)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(plane, 3))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ops.astype("float16"),
        lambda: ops.astype(np.float16),
        lambda: ops.rescale((0, 1), dtype="float16"),
        lambda: ops.custom("numpy:copy", dtype="f2"),
        lambda: ops.parse("astype:dtype=float16"),
    ],
    ids=["astype", "astype-numpy", "rescale", "custom", "parsed"],
)
def test_float16_outputs_are_refused(build):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        build()
    assert "float16 is not supported" in _message(error)
    assert "use float32" in _message(error)


@pytest.mark.parametrize("value", [None, "uint9", "<>", "i4,i4"])
def test_a_dtype_that_is_not_one(value):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        ops.astype(value)
    assert "dtype" in _message(error)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: ops.parse(3), "got 3"),
        (lambda: ops.from_dict(None), "record is a dict"),
        (lambda: ops.from_dict({"op": "chain"}), "list of steps"),
        (lambda: ops.from_dict({"op": "chain", "steps": 3}), "list of steps"),
        (lambda: ops.invert()(np.array([["a"]])), "dtype <U1"),
        (lambda: ops.gaussian(1)(np.zeros((4, 4), np.complex64)), "complex64"),
    ],
    ids=["parse-int", "record-None", "chain-no-steps", "chain-steps-int", "str", "cx"],
)
def test_odd_values_for_the_operation_builders(build, words):
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        build()
    assert words in _message(error)


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        ops.parse("gaussian:sigma=2,truncate=3,sigma=3")
    assert "parameter sigma is given twice" in _message(error)


def _with_nan(dtype: str = "float32") -> np.ndarray:
    data = np.linspace(0, 200, 16**3, dtype=dtype).reshape(16, 16, 16)
    data[9, 3, 12] = np.nan
    return data


@pytest.mark.parametrize(
    ("op", "name"),
    [
        (ops.astype("uint8"), "astype to uint8"),
        (ops.astype("int32"), "astype to int32"),
        (ops.rescale((0, 200), dtype="uint16"), "rescale to uint16"),
        (ops.custom("numpy:copy", dtype="uint8"), "custom numpy:copy to uint8"),
        (ops.chain(ops.gaussian(1), ops.astype("uint8")), "astype to uint8"),
    ],
    ids=["astype", "astype-int32", "rescale", "custom", "chain"],
)
def test_nan_into_an_integer_output_fails_naming_the_op(tmp_path, op, name):
    data = _with_nan()
    with pytest.raises(chunkwise.BlockError) as error:
        op(data)
    assert name in _message(error) and "NaN" in _message(error)
    out = tmp_path / "out.zarr"
    with pytest.raises(chunkwise.BlockError) as error:
        chunkwise.process(data, op, out, chunks=(8, 8, 8), n_jobs=1)
    message = _message(error)
    assert name in message and "no integer value" in message
    assert "block" in message  # the run names the block
    assert zarr.open_array(out, mode="r").attrs["chunkwise"]["status"] == "failed"


def test_infinities_clip_and_floats_keep_nan():
    data = np.array([[np.inf, -np.inf, 300.0, np.nan]])
    np.testing.assert_array_equal(ops.astype("uint8")(data[:, :3]), [[255, 0, 255]])
    kept = ops.astype("float32")(data)
    assert np.isnan(kept[0, 3]) and kept.dtype == np.float32


@pytest.mark.parametrize("fmt", [2, 3])
def test_a_zero_chunk_side_in_the_metadata_is_refused(tmp_path, fmt):
    import json

    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=VOLUME, chunks=(8, 8, 8), zarr_format=fmt)
    if fmt == 2:
        meta = json.loads((path / ".zarray").read_text())
        meta["chunks"] = [8, 0, 8]
        (path / ".zarray").write_text(json.dumps(meta))
    else:
        meta = json.loads((path / "zarr.json").read_text())
        meta["chunk_grid"]["configuration"]["chunk_shape"] = [8, 0, 8]
        (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        chunkwise.plan(path, ops.invert())
    assert "chunks (8, 0, 8)" in _message(error)


@pytest.mark.parametrize("kind", ["raises", "syntax"])
def test_a_function_module_broken_at_import(tmp_path, monkeypatch, kind):
    name = f"broken_{kind}_module"
    source = 'raise OSError("no licence")\n' if kind == "raises" else "def f(:\n"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        ops.custom(f"{name}:f")
    message = _message(error)
    assert name in message
    assert ("OSError: no licence" if kind == "raises" else "SyntaxError") in message


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), "5", True])
def test_bad_timeouts(timeout):
    with pytest.raises(chunkwise.ChunkwiseError, match="timeout"):
        open_source(VOLUME, timeout=timeout)


# ------------------------------------------------------------------ HTTP


class _Server:
    """A threaded HTTP server over a folder that can stall chosen requests."""

    def __init__(self, root: Path) -> None:
        self.release = threading.Event()
        self.stall = lambda path: False
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.stall(self.path):
                    server.release.wait(30)
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path) -> Iterator[_Server]:
    zarr.create_array(tmp_path / "in.zarr", data=VOLUME, chunks=(8, 8, 8))
    served = _Server(tmp_path)
    yield served
    served.close()


def test_an_http_input_reads_normally(server):
    source = open_source(server.url("in.zarr"), timeout=5)
    data = source.read(Box((0, 0, 0), VOLUME.shape))
    np.testing.assert_array_equal(data, VOLUME)


@pytest.mark.parametrize("missing", ["error", "fill"])
def test_a_stalled_http_chunk_times_out_saying_what(server, missing):
    server.stall = lambda path: "/c/" in path  # chunks, not metadata
    url = server.url("in.zarr")
    source = open_source(url, timeout=1, missing=missing)
    started = time.perf_counter()
    with pytest.raises((TimeoutError, chunkwise.BlockError)) as error:
        source.read(Box((0, 0, 0), (4, 4, 4)))
    assert time.perf_counter() - started < 10
    message = _message(error)
    assert f"reading {url}/c/0/0/0 timed out after 1 s" in message


def test_stalled_http_metadata_times_out_on_open(server):
    server.stall = lambda path: True
    url = server.url("in.zarr")
    started = time.perf_counter()
    with pytest.raises(chunkwise.ChunkwiseError) as error:
        open_source(url, timeout=1)
    assert time.perf_counter() - started < 10
    assert f"reading {url}/" in _message(error)
    assert "timed out after 1 s" in _message(error)


def test_cli_timeout_on_a_stalled_server(server, tmp_path, capsys):
    server.stall = lambda path: True
    url = server.url("in.zarr")
    assert main(["info", url, "--timeout", "1"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"chunkwise: error: reading {url}/")
    assert line.endswith("timed out after 1 s")

    server.stall = lambda path: "/c/" in path
    out = tmp_path / "out.zarr"
    argv = ["run", url, str(out), "--op", "invert", "--timeout", "1", "--quiet"]
    assert main(argv) == 1
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("chunkwise: run failed: block ")
    assert "timed out after 1 s" in line
