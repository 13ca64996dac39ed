"""Object stores: S3 input and output against a real moto server, with real s3fs.

The server (moto's ``ThreadedMotoServer`` on 127.0.0.1) checks credentials: each
request is signed and verified against IAM users made for the module, so a wrong
secret is refused as AWS refuses it. Results are compared with scipy.ndimage on the
whole array; every test checks that the input bucket is unchanged (keys, ETags,
modification times) and that no secret reached the output's attributes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import ops
from chunkwise._remote import check_storage_options
from chunkwise._secrets import redact, scrub
from chunkwise.cli import main
from conftest import reference_downsample
from faults import *  # noqa: F403 - the fixtures
from faults import SLOW_OP, cli_env, run_args, run_cli, start_cli, wait_for

s3fs = pytest.importorskip("s3fs", reason="the S3 tests need s3fs: pip install s3fs")
moto_server = pytest.importorskip(
    "moto.server", reason="the S3 tests need moto's server: pip install 'moto[server]'"
)
boto3 = pytest.importorskip("boto3", reason="the S3 tests need boto3 (moto's)")

if TYPE_CHECKING:
    from collections.abc import Iterator

SHAPE = (21, 34, 27)  # 8^3 chunks divide none of it
CHUNKS = (8, 8, 8)
#: Every test's runs finish within this; a failure must come much sooner.
FAST = 10.0


@dataclass
class Server:
    """The moto server and the credentials of one IAM user allowed everything."""

    endpoint: str
    key: str
    secret: str
    #: Another user's credentials, allowed everything too (per-side settings).
    other: tuple[str, str]
    #: A user who may list and read, not write.
    reader: tuple[str, str]
    client: Any = field(repr=False)

    @property
    def options(self) -> dict[str, str]:
        """Explicit storage options: the endpoint, key and secret."""
        return {"endpoint_url": self.endpoint, "key": self.key, "secret": self.secret}

    def env(self) -> dict[str, str]:
        """The same as AWS environment variables."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
        }

    def objects(self, bucket: str, prefix: str = "") -> dict[str, tuple]:
        """Key -> (ETag, LastModified, Size) of every object under ``prefix``."""
        found = {}
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = (
                    item["ETag"],
                    item["LastModified"],
                    item["Size"],
                )
        return found

    def bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name


def _user(iam: Any, name: str, action: Any = "*") -> tuple[str, str]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
    }
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name, PolicyName="policy", PolicyDocument=json.dumps(policy)
    )
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return made["AccessKeyId"], made["SecretAccessKey"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A moto S3 server on a free port of 127.0.0.1 that verifies signatures."""
    from moto.core.authorization import enable_iam_authentication

    # werkzeug logs every request on stderr.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Before authentication is on: the IAM users to sign with.
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        region_name="us-east-1",
    )
    key, secret = _user(iam, "chunkwise")
    other = _user(iam, "other")
    reader = _user(iam, "reader", action=["s3:GetObject", "s3:ListBucket"])
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    try:
        with enable_iam_authentication():
            yield Server(endpoint, key, secret, other, reader, client)
    finally:
        moto.stop()


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch) -> None:
    """No AWS_* variable: a test that wants the environment sets it itself.

    s3fs keeps one file system per set of options, made with the environment of
    its time: only one test here makes one from the environment.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


@dataclass
class Input:
    """A volume in its own bucket, and what its objects were when written."""

    server: Server
    bucket: str
    data: np.ndarray
    before: dict[str, tuple]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/in.zarr"

    def assert_unchanged(self) -> None:
        assert self.server.objects(self.bucket) == self.before


def _upload(server: Server, data: np.ndarray, chunks: tuple[int, ...]) -> Input:
    bucket = server.bucket()
    zarr.create_array(
        f"s3://{bucket}/in.zarr",
        data=data,
        chunks=chunks,
        storage_options=server.options,
    )
    return Input(server, bucket, data, server.objects(bucket))


@pytest.fixture
def floats(server) -> Input:
    data = np.random.default_rng(1).random(SHAPE, dtype=np.float32) * 100
    return _upload(server, data, CHUNKS)


@pytest.fixture
def bytes_(server) -> Input:
    data = np.random.default_rng(2).integers(0, 256, SHAPE, dtype=np.uint8)
    return _upload(server, data, CHUNKS)


def _read(url: str, server: Server, path: str | None = None) -> Any:
    """An output read back independently of chunkwise, through zarr and s3fs."""
    return zarr.open(url, mode="r", path=path, storage_options=server.options)


def _assert_no_secret(node: Any, *secrets: str) -> None:
    """No secret in the attributes of ``node`` (nor of any array under a group)."""
    nodes = [node]
    if isinstance(node, zarr.Group):
        nodes += [array for _, array in node.arrays()]
    for each in nodes:
        text = json.dumps(each.attrs.asdict())
        for secret in secrets:
            assert secret not in text


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------- runs


def test_s3_to_s3_through_the_api_equals_scipy(server, floats):
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.zarr"
    result = chunkwise.process(
        floats.url,
        ops.gaussian(1),
        out,
        n_jobs=2,
        block=(8, 16, 16),
        storage_options=server.options,
    )
    expected = ndimage.gaussian_filter(floats.data, 1)
    np.testing.assert_array_equal(result[:], expected)
    back = _read(out, server)
    np.testing.assert_array_equal(back[:], expected)
    record = back.attrs["chunkwise"]
    assert record["status"] == "complete"
    assert record["input"]["location"] == floats.url
    assert record["input_fingerprint"]["files"] == len(floats.before)
    _assert_no_secret(back, server.secret, server.key)
    # Every block is in the ledger, beside the chunks.
    ledger = server.objects(out_bucket, "out.zarr/chunkwise-ledger/")
    assert len(ledger) == record["recipe"]["output"]["blocks"]
    assert chunkwise.verify(out, storage_options=server.options) == []
    floats.assert_unchanged()


def test_s3_to_s3_through_the_cli_with_storage_options(server, bytes_):
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.zarr"
    options = [
        "--storage-option", f"endpoint_url={server.endpoint}",
        "--storage-option", f"key={server.key}",
        "--storage-option", f"secret={server.secret}",
    ]  # fmt: skip
    env = {k: v for k, v in cli_env().items() if not k.startswith("AWS_")}
    done = run_cli(
        "run", bytes_.url, out, "--op", "gaussian:sigma=1", "-j", "2", "--quiet",
        *options, env=env,
    )  # fmt: skip
    assert done.code == 0, str(done)
    assert done.out == f"wrote {out}\n"
    result = _read(out, server)
    np.testing.assert_array_equal(result[:], ndimage.gaussian_filter(bytes_.data, 1))
    assert result.attrs["chunkwise"]["status"] == "complete"
    _assert_no_secret(result, server.secret, server.key)
    info = run_cli("info", out, *options, env=env)
    assert info.code == 0, str(info)
    assert "status: complete" in info.out
    assert server.secret not in info.out + info.err
    checked = run_cli("verify", out, *options, env=env)
    assert checked.code == 0, str(checked)
    bytes_.assert_unchanged()


def test_credentials_and_endpoint_from_the_environment(
    server, floats, monkeypatch, capsys
):
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    out_bucket = server.bucket()
    expected = ndimage.gaussian_filter(floats.data, 1)
    api = f"s3://{out_bucket}/api.zarr"
    chunkwise.process(floats.url, ops.gaussian(1), api, n_jobs=2)
    np.testing.assert_array_equal(_read(api, server)[:], expected)
    cli = f"s3://{out_bucket}/cli.zarr"
    argv = ["run", floats.url, cli, "--op", "gaussian:sigma=1", "-j", "2", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    result = _read(cli, server)
    np.testing.assert_array_equal(result[:], expected)
    _assert_no_secret(result, server.secret, server.key)
    floats.assert_unchanged()


def test_local_input_to_s3_and_s3_input_to_local(server, floats, tmp_path):
    local = tmp_path / "in.zarr"
    zarr.create_array(local, data=floats.data, chunks=CHUNKS)
    out = f"s3://{server.bucket()}/from-local.zarr"
    chunkwise.process(local, ops.gaussian(1), out, storage_options=server.options)
    expected = ndimage.gaussian_filter(floats.data, 1)
    np.testing.assert_array_equal(_read(out, server)[:], expected)
    here = tmp_path / "from-s3.zarr"
    chunkwise.process(floats.url, ops.gaussian(1), here, storage_options=server.options)
    np.testing.assert_array_equal(zarr.open_array(here)[:], expected)
    floats.assert_unchanged()


def test_each_side_with_its_own_credentials(server, bytes_, capsys):
    """Shared options that would fail, overridden on each side by another user."""
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.zarr"
    other_key, other_secret = server.other
    argv = [
        "run", bytes_.url, out, "--op", "median:size=3", "-j", "2", "--quiet",
        "--storage-option", f"endpoint_url={server.endpoint}",
        "--storage-option", "key=AKIAWRONGWRONGWRONG0",
        "--storage-option", "secret=not-the-secret-of-anyone",
        "--input-storage-option", f"key={server.key}",
        "--input-storage-option", f"secret={server.secret}",
        "--output-storage-option", f"key={other_key}",
        "--output-storage-option", f"secret={other_secret}",
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    result = _read(out, server)
    np.testing.assert_array_equal(result[:], ndimage.median_filter(bytes_.data, 3))
    _assert_no_secret(result, server.secret, other_secret)
    bytes_.assert_unchanged()
    # With the shared (wrong) credentials alone, the output side is refused.
    argv[argv.index(f"secret={other_secret}")] = "secret=not-the-secret-of-anyone"
    argv[argv.index(f"key={other_key}")] = "key=AKIAWRONGWRONGWRONG0"
    argv[2] = f"s3://{out_bucket}/refused.zarr"
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "the output" in line and "access denied" in line
    assert server.objects(out_bucket, "refused.zarr") == {}


def test_ome_zarr_output_on_s3_has_exact_levels_and_valid_metadata(server, floats):
    models = pytest.importorskip(
        "ome_zarr_models.v05.image",
        reason="validating OME-Zarr needs ome-zarr-models (the dev extra)",
    )
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.ome.zarr"
    chunkwise.process(
        floats.url,
        ops.gaussian(1),
        out,
        n_jobs=2,
        levels=3,
        storage_options=server.options,
    )
    group = _read(out, server)
    assert isinstance(group, zarr.Group)
    models.Image.from_zarr(group)  # raises on invalid metadata
    image = group.attrs["ome"]["multiscales"][0]
    levels = [level["path"] for level in image["datasets"]]
    assert len(levels) == 3
    expected = ndimage.gaussian_filter(floats.data, 1)
    for number, path in enumerate(levels):
        if number:
            expected = reference_downsample(expected, 2, "mean")
        np.testing.assert_array_equal(group[path][:], expected, f"level {number}")
    assert group.attrs["chunkwise"]["status"] == "complete"
    _assert_no_secret(group, server.secret, server.key)
    floats.assert_unchanged()


def test_overwrite_replaces_only_the_output_prefix(server, bytes_, capsys):
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/o.zarr"
    # Neighbours whose keys start like the output's.
    for key in ("o.zarr2/keep", "o.zarrkeep", "o.zar"):
        server.client.put_object(Bucket=out_bucket, Key=key, Body=b"mine")
    neighbours = server.objects(out_bucket)
    options = server.options
    chunkwise.process(bytes_.url, ops.invert(), out, storage_options=options)
    with pytest.raises(chunkwise.ChunkwiseError, match="already exists"):
        chunkwise.process(bytes_.url, ops.invert(), out, storage_options=options)
    chunkwise.process(
        bytes_.url,
        ops.clip(10, 20),
        out,
        overwrite=True,
        block=(16, 16, 16),
        storage_options=options,
    )
    result = _read(out, server)
    np.testing.assert_array_equal(result[:], np.clip(bytes_.data, 10, 20))
    # The ledger holds the new run's blocks only (2 x 3 x 2 of 16^3).
    assert len(server.objects(out_bucket, "o.zarr/chunkwise-ledger/")) == 12
    now = server.objects(out_bucket)
    assert {k: now[k] for k in neighbours} == neighbours
    bytes_.assert_unchanged()


# ------------------------------------------------------------------ kill -9


def _ledger_count(server: Server, bucket: str) -> int:
    return len(server.objects(bucket, "out.zarr/chunkwise-ledger/"))


@pytest.mark.slow
def test_kill9_then_resume_equals_an_uninterrupted_run(
    server, reference, slow_op, monkeypatch
):
    """The run of tests/test_fault_kill.py, with the input and output on S3."""
    source = _upload(server, reference.data, (16, 16, 16))
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.zarr"
    env = {k: v for k, v in slow_op(0.05).items() if not k.startswith("AWS_")}
    env |= server.env()
    # The custom operation's module, for the runs made here.
    monkeypatch.syspath_prepend(env["PYTHONPATH"].split(os.pathsep)[0])
    run = start_cli(*run_args(source.url, out, op=SLOW_OP), env=env)
    wait_for(
        lambda: _ledger_count(server, out_bucket) >= 20 or not run.running,
        interval=0.02,
        what="20 blocks in the ledger",
    )
    # Object stores have no lock: another run of this host is refused by its record.
    for flag in ("resume", "overwrite"):
        with pytest.raises(chunkwise.ChunkwiseError, match="being written by run"):
            chunkwise.process(
                source.url,
                ops.parse(SLOW_OP),
                out,
                storage_options=server.options,
                **{flag: True},
            )
    assert run.kill9() == -9, "the run ended before it was killed"
    done = _ledger_count(server, out_bucket)
    assert 20 <= done < 216
    assert _read(out, server).attrs["chunkwise"]["status"] == "running"
    resumed = run_cli(*run_args(source.url, out, "--resume", op=SLOW_OP), env=env)
    assert resumed.code == 0, str(resumed)
    result = _read(out, server)
    assert result.attrs["chunkwise"]["status"] == "complete"
    np.testing.assert_array_equal(result[:], reference.clean)
    np.testing.assert_array_equal(result[:], reference.scipy)
    assert _ledger_count(server, out_bucket) == 216
    source.assert_unchanged()


# ------------------------------------------------------------------- errors


def _fails_in_one_line(argv: list[str], capsys, *needles: str) -> str:
    began = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - began < FAST
    line = _one_line(capsys.readouterr().err)
    for needle in needles:
        assert needle in line, line
    return line


@pytest.mark.parametrize("side", ["input", "output"])
def test_a_bucket_that_does_not_exist_is_one_line_and_exit_2(
    server, bytes_, side, capsys
):
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x.zarr"
    out_bucket = server.bucket()
    source, out = (
        (missing, f"s3://{out_bucket}/out.zarr")
        if side == "input"
        else (bytes_.url, missing)
    )
    with pytest.raises(chunkwise.ChunkwiseError, match="does not exist") as error:
        chunkwise.process(source, ops.invert(), out, storage_options=server.options)
    assert len(str(error.value).splitlines()) == 1
    assert f"the {side} {missing}" in str(error.value)
    argv = ["run", source, out, "--op", "invert", "--quiet"]
    argv += [f"--storage-option={k}={v}" for k, v in server.options.items()]
    _fails_in_one_line(argv, capsys, "does not exist", "no-such-bucket")
    assert server.objects(out_bucket) == {}
    bytes_.assert_unchanged()


@pytest.mark.parametrize("side", ["input", "output"])
def test_wrong_credentials_are_one_line_and_exit_2_without_the_secret(
    server, bytes_, side, capsys
):
    wrong = f"wrong-{uuid.uuid4().hex}"
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.zarr"
    with pytest.raises(chunkwise.ChunkwiseError, match="access denied") as error:
        chunkwise.process(
            bytes_.url,
            ops.invert(),
            out,
            storage_options=server.options | {"secret": wrong},
        )
    assert wrong not in str(error.value)
    flag = f"--{side}-storage-option"
    argv = ["run", bytes_.url, out, "--op", "invert", "--quiet"]
    argv += [f"--storage-option={k}={v}" for k, v in server.options.items()]
    argv += [flag, f"secret={wrong}"]
    line = _fails_in_one_line(argv, capsys, f"the {side}", "access denied")
    assert wrong not in line and server.secret not in line
    assert server.objects(out_bucket) == {}
    bytes_.assert_unchanged()


def test_credentials_that_cannot_write_are_one_line_and_exit_2(server, bytes_, capsys):
    key, secret = server.reader
    options = {"endpoint_url": server.endpoint, "key": key, "secret": secret}
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/o.zarr"
    with pytest.raises(chunkwise.ChunkwiseError, match="Access Denied") as error:
        chunkwise.process(bytes_.url, ops.invert(), out, storage_options=options)
    assert f"cannot create the output: {out}: " in str(error.value)
    argv = ["run", bytes_.url, out, "--op", "invert", "--quiet"]
    argv += [f"--storage-option={k}={v}" for k, v in options.items()]
    line = _fails_in_one_line(argv, capsys, "cannot create the output", "Denied")
    assert secret not in line
    assert server.objects(out_bucket) == {}
    bytes_.assert_unchanged()


def test_an_endpoint_that_refuses_connections_fails_fast(server, bytes_, capsys):
    dead = f"http://127.0.0.1:{_closed_port()}"
    options = server.options | {"endpoint_url": dead}
    began = time.monotonic()
    with pytest.raises(chunkwise.ChunkwiseError, match="cannot reach the input"):
        chunkwise.process(bytes_.url, ops.invert(), None, storage_options=options)
    assert time.monotonic() - began < FAST
    argv = ["run", bytes_.url, f"s3://{server.bucket()}/o.zarr", "--op", "invert"]
    argv += ["--output-storage-option", f"endpoint_url={dead}", "--quiet"]
    argv += [f"--storage-option={k}={v}" for k, v in server.options.items()]
    _fails_in_one_line(argv, capsys, "cannot reach the output", dead)
    bytes_.assert_unchanged()


def test_an_output_that_is_or_holds_the_input_is_refused(server, bytes_):
    options = server.options
    for out, message in [
        (bytes_.url, "is or contains the input"),
        (f"s3://{bytes_.bucket}", "is or contains the input"),
        (f"{bytes_.url}/inner.zarr", "is inside the input"),
    ]:
        with pytest.raises(chunkwise.ChunkwiseError, match=message):
            chunkwise.process(
                bytes_.url,
                ops.invert(),
                out,
                overwrite=True,
                force=True,
                storage_options=options,
            )
    bytes_.assert_unchanged()


def test_a_prefix_holding_other_objects_is_not_written_into(server, bytes_):
    out_bucket = server.bucket()
    server.client.put_object(Bucket=out_bucket, Key="data/notes.txt", Body=b"mine")
    before = server.objects(out_bucket)
    for overwrite in (False, True):
        with pytest.raises(chunkwise.ChunkwiseError, match="not a Zarr array"):
            chunkwise.process(
                bytes_.url,
                ops.invert(),
                f"s3://{out_bucket}/data",
                overwrite=overwrite,
                storage_options=server.options,
            )
    assert server.objects(out_bucket) == before
    bytes_.assert_unchanged()


# ----------------------------------------------------------- storage options


def test_storage_options_are_checked_once_in_one_line(tmp_path, capsys):
    local = tmp_path / "in.zarr"
    zarr.create_array(local, data=np.zeros((4, 4, 4), np.uint8))
    out = tmp_path / "out.zarr"
    secret = "s3cr3t-value-never-shown"
    for bad, message in [
        ([("secret", secret)], "must be a dict with text keys"),
        ({1: secret}, "keys that are not text"),
        ({"secret": secret}, "no input or output here is one"),
    ]:
        with pytest.raises(chunkwise.ChunkwiseError, match=message) as error:
            chunkwise.process(local, ops.invert(), out, storage_options=bad)
        assert secret not in str(error.value)
        assert len(str(error.value).splitlines()) == 1
    assert not out.exists()
    argv = ["run", str(local), str(out), "--op", "invert", "--quiet"]
    line = _fails_in_one_line([*argv, "--storage-option", f"secret={secret}"], capsys)
    assert "no input or output here is one" in line and secret not in line
    line = _fails_in_one_line([*argv, "--storage-option", secret], capsys)
    assert "KEY=VALUE" in line and secret not in line
    line = _fails_in_one_line([*argv, "--output-storage-option", "anon=true"], capsys)
    assert "--output-storage-option applies to a URL" in line
    assert not out.exists()


def test_cli_values_are_json_where_they_parse_and_secrets_stay_text(monkeypatch):
    from chunkwise import cli

    seen = {}

    def record(source, op, out, options, **kwargs):
        seen.update(options.storage_options)

    monkeypatch.setattr("chunkwise._run.process", record)
    argv = [
        "run", "s3://b/in.zarr", "s3://b/out.zarr", "--quiet",
        "--storage-option", "anon=true",
        "--storage-option", 'client_kwargs={"region_name": "eu-west-1"}',
        "--storage-option", "endpoint_url=http://127.0.0.1:9000",
        "--storage-option", "max_concurrency=4",
        "--storage-option", "profile=lab",
        "--storage-option", "secret=12345",
        "--storage-option", "token=null",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    assert seen == {
        "anon": True,
        "client_kwargs": {"region_name": "eu-west-1"},
        "endpoint_url": "http://127.0.0.1:9000",
        "max_concurrency": 4,
        "profile": "lab",
        "secret": "12345",
        "token": "null",
    }


def test_urls_and_messages_lose_their_secrets():
    url = "https://user:pa55word@host/v.zarr?X-Amz-Signature=abcd&max-keys=2&v=1"
    assert redact(url) == (
        "https://user:***@host/v.zarr?X-Amz-Signature=***&max-keys=2&v=1"
    )
    assert redact("/data/in?.zarr") == "/data/in?.zarr"
    options = {
        "key": "AKIA1234",
        "client_kwargs": {"aws_session_token": "tok-9876"},
        "headers": {"Authorization": "Bearer b-4321"},
        "region_name": "us-east-1",
    }
    text = f'denied for AKIA1234 with tok-9876, Bearer b-4321 at "{url}" us-east-1'
    assert scrub(text, options) == (
        f'denied for *** with ***, *** at "{redact(url)}" us-east-1'
    )
    assert check_storage_options({"anon": True}, "s3://b/x", None) == {"anon": True}


# ------------------------------------------------------------------- on dask


# With another cluster on 8787, distributed moves to a free port and leaks the
# socket that failed to bind.
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_s3_to_s3_on_a_dask_cluster_the_workers_write_the_chunks(server, floats):
    """Workers open the buckets with the run's options; the driver, the ledger."""
    distributed = pytest.importorskip(
        "distributed", reason="the dask backend needs dask.distributed"
    )
    out_bucket = server.bucket()
    out = f"s3://{out_bucket}/out.ome.zarr"
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # The workers have no AWS settings of their own.
        assert not any(
            client.run(lambda: any(k.startswith("AWS_") for k in os.environ)).values()
        )
        chunkwise.process(
            floats.url,
            ops.median(3),
            out,
            backend="dask",
            scheduler=client,
            levels=2,
            storage_options=server.options,
        )
    threads = chunkwise.process(
        floats.data, ops.median(3), None, format="ome-zarr", levels=2
    )
    back = zarr.open_group(out, mode="r", storage_options=server.options)
    assert back.attrs["chunkwise"]["status"] == "complete"
    for level in ("0", "1"):
        np.testing.assert_array_equal(back[level][:], threads[level][:])
    np.testing.assert_array_equal(back["0"][:], ndimage.median_filter(floats.data, 3))
    _assert_no_secret(back, server.secret, server.key)
    floats.assert_unchanged()
