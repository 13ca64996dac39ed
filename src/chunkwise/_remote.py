"""Remote inputs: fsspec URLs opened read-only, with a timeout on HTTP reads.

aiohttp waits 5 minutes for a stalled server by default and then raises a
``TimeoutError`` with no message. Here an HTTP(S) input gives up after ``timeout``
seconds without data, and the error says what timed out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from zarr.abc.store import RangeByteRequest
from zarr.storage import FsspecStore, WrapperStore

from chunkwise._zarr_compat import default_buffer_prototype
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from zarr.abc.buffer import Buffer
    from zarr.abc.store import ByteRequest

    from chunkwise._zarr_compat import BufferPrototype

__all__ = ["DEFAULT_TIMEOUT", "check_timeout", "is_url", "open_url"]

#: Seconds an HTTP(S) input may send nothing before the read fails.
DEFAULT_TIMEOUT = 60.0

_HTTP = ("http", "https")


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


def open_url(url: str, timeout: float | None) -> Any:
    """A read-only zarr store for an fsspec ``url``, or a one-line error."""
    protocol = url.split("://", 1)[0].lower()
    options: dict[str, Any] = {}
    if protocol in _HTTP:
        try:
            import aiohttp
        except ImportError:
            raise ChunkwiseError(
                f"reading {url} needs aiohttp: pip install aiohttp"
            ) from None
        # Per connection attempt and per read, not per request: a large chunk over
        # a slow link may take longer than ``timeout`` while data keeps coming.
        limits = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=timeout
        )
        options["client_kwargs"] = {"timeout": limits}
    try:
        store = FsspecStore.from_url(url, storage_options=options, read_only=True)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ChunkwiseError(f"cannot open {url}: {reason}") from None
    if protocol in _HTTP and timeout is not None:
        return TimedStore(store, url=url, timeout=timeout)
    return store


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
