"""Remote inputs and outputs: fsspec URLs (``s3://``, ``gs://``, ``https://``...).

Settings reach the file system from the standard environment (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``...: s3fs and botocore read them) and from
``storage_options``, fsspec's keyword arguments of the file system. They are never
recorded, and never shown (`chunkwise._secrets`).

Opening an object-store location costs one request up front (`probe`), so that a
missing bucket, refused credentials or an endpoint that does not answer give one
line naming the cause before anything else is read or written, instead of a
failure in the middle of zarr's concurrent reads.

aiohttp waits 5 minutes for a stalled server by default and then raises a
``TimeoutError`` with no message. Here an HTTP(S) input gives up after ``timeout``
seconds without data, and the error says what timed out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zarr.abc.store import RangeByteRequest
from zarr.storage import FsspecStore, WrapperStore

from chunkwise._secrets import redact, scrub
from chunkwise._zarr_compat import default_buffer_prototype, sync
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from zarr.abc.buffer import Buffer
    from zarr.abc.store import ByteRequest

    from chunkwise._zarr_compat import BufferPrototype

__all__ = [
    "DEFAULT_TIMEOUT",
    "URLStore",
    "check_storage_options",
    "check_timeout",
    "is_url",
    "open_url",
]

#: Seconds an HTTP(S) input may send nothing before the read fails.
DEFAULT_TIMEOUT = 60.0

_HTTP = ("http", "https")
_S3 = ("s3", "s3a")
#: botocore's "standard" retry mode with its own default of 3 attempts, unless the
#: user configures retries: with its default "legacy" mode (5 attempts) a refused
#: connection took 2 to 7 s here to be reported, 1.7 s with this.
_S3_RETRIES = {"mode": "standard", "total_max_attempts": 3}
_RETRY_SETTINGS = ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


def is_url(path: str) -> bool:
    """True for fsspec URLs such as ``s3://`` or ``https://`` (not ``file://``)."""
    return "://" in path and not path.startswith("file://")


def check_timeout(timeout: object) -> float | None:
    """Return ``timeout`` as seconds (None: wait for ever), else raise."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ChunkwiseError(
            f"timeout must be a positive number of seconds or None, got {timeout!r}"
        )
    return float(timeout)


def check_storage_options(options: object, *locations: Any) -> dict[str, Any] | None:
    """``options`` as a dict, checked once for a run over ``locations``.

    They apply to each of ``locations`` (the input and the output) that is an
    fsspec URL given as text; none being one is an error (when ``locations`` are
    given), as is anything but a dict with text keys. Values are never shown: they
    may be secrets.
    """
    if options is None:
        return None
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ChunkwiseError(
            "storage_options must be a dict with text keys, such as "
            f"{{'endpoint_url': 'http://...', 'anon': True}}; got a "
            f"{type(options).__name__}"
            + (" with keys that are not text" if isinstance(options, Mapping) else "")
        )
    if locations and not any(
        isinstance(place, str | os.PathLike) and is_url(os.fspath(place))
        for place in locations
    ):
        raise ChunkwiseError(
            "storage_options apply only to a location given as an fsspec URL "
            "(s3://, gs://, https://...), and no input or output here is one"
        )
    return dict(options)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _options(
    protocol: str, timeout: float | None, given: dict[str, Any] | None
) -> dict[str, Any]:
    """What the file system gets: ``given``, and chunkwise's bounds where unset."""
    options = dict(given or {})
    if protocol in _HTTP:
        try:
            import aiohttp
        except ImportError:
            raise ChunkwiseError(
                f"reading {protocol}:// URLs needs aiohttp: pip install aiohttp"
            ) from None
        # Per connection attempt and per read, not per request: a large chunk over
        # a slow link may take longer than ``timeout`` while data keeps coming.
        limits = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=timeout
        )
        options["client_kwargs"] = {"timeout": limits} | dict(
            options.get("client_kwargs") or {}
        )
    elif protocol in _S3:
        config = dict(options.get("config_kwargs") or {})
        if "retries" not in config and not any(
            name in os.environ for name in _RETRY_SETTINGS
        ):
            config["retries"] = dict(_S3_RETRIES)
            options["config_kwargs"] = config
    return options


def open_url(
    url: str,
    timeout: float | None,
    storage_options: dict[str, Any] | None = None,
    *,
    read_only: bool = True,
    role: str = "input",
) -> Any:
    """A zarr store for an fsspec ``url`` (read-only unless said), or a one-line error.

    ``role`` (``"input"`` or ``"output"``) names the location in messages.
    """
    protocol = url.split("://", 1)[0].lower()
    shown = redact(url)
    options = _options(protocol, timeout, storage_options)
    try:
        store = URLStore.from_url(url, storage_options=options, read_only=read_only)
    except Exception as error:
        reason = scrub(_first_line(error), options)
        raise ChunkwiseError(f"cannot open the {role} {shown}: {reason}") from None
    if protocol in _S3:
        probe(store, shown, options, role)
    if protocol in _HTTP and timeout is not None:
        return TimedStore(store, url=shown, timeout=timeout)
    return store


def probe(store: FsspecStore, shown: str, options: dict[str, Any], role: str) -> None:
    """Ask an S3 endpoint for one key under the location, or raise one line.

    Listing is what a run needs anyway (the input's files, the output's ledger),
    and its error names the cause: no such bucket, credentials refused, no
    connection.
    """
    fs = store.fs
    bucket, key, _ = fs.split_path(store.path)
    try:
        sync(
            fs._call_s3(
                "list_objects_v2", Bucket=bucket, Prefix=key.rstrip("/"), MaxKeys=1
            )
        )
    except Exception as error:
        client = getattr(fs, "_s3", None)
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        at = f" at {endpoint}" if endpoint else ""
        raise ChunkwiseError(
            scrub(_explain(error, bucket, shown, role, at), options)
        ) from None


def _explain(error: Exception, bucket: str, shown: str, role: str, at: str) -> str:
    names = {cls.__name__ for cls in type(error).__mro__}
    reason = _first_line(error)
    if isinstance(error, FileNotFoundError):
        return f"the {role} {shown}: the bucket {bucket!r} does not exist{at}"
    if isinstance(error, PermissionError):
        return (
            f"the {role} {shown}: access denied{at} ({reason}); check the "
            "credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            "or the key and secret storage options)"
        )
    if "NoCredentialsError" in names:
        return (
            f"the {role} {shown}: no credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, pass the key and secret storage "
            "options, or anon=true for a public bucket"
        )
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionError"}:
        return f"cannot reach the {role} {shown}{at}: {reason}"
    return f"cannot open the {role} {shown}{at}: {type(error).__name__}: {reason}"


class URLStore(FsspecStore):
    """zarr's fsspec store, named in messages by its URL (without secrets)."""

    def __str__(self) -> str:
        protocol = self.fs.protocol
        protocol = protocol if isinstance(protocol, str) else protocol[0]
        return f"{protocol}://{self.path}"


class TimedStore(WrapperStore):
    """An fsspec store whose read timeouts name the URL and the limit."""

    def __init__(self, store: FsspecStore, *, url: str, timeout: float) -> None:
        super().__init__(store)
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _with_store(self, store: FsspecStore) -> TimedStore:
        return type(self)(store, url=self.url, timeout=self.timeout)

    async def _timed(self, what: str, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except TimeoutError as error:
            raise TimeoutError(
                f"reading {self.url}/{what} timed out after {self.timeout:g} s"
            ) from error

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        return await self._timed(key, self._store.get(key, prototype, byte_range))

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        what = key_ranges[0][0] if len(key_ranges) == 1 else f"{len(key_ranges)} keys"
        return await self._timed(
            what, self._store.get_partial_values(prototype, key_ranges)
        )

    async def exists(self, key: str) -> bool:
        # fsspec's HTTP exists() answers False when the server does not answer in
        # time, which would call a stalled chunk missing: ask for its first byte.
        first = self._store.get(key, default_buffer_prototype(), RangeByteRequest(0, 1))
        return await self._timed(key, first) is not None
