"""Secrets kept out of what chunkwise records and says: URLs and messages.

Storage options (fsspec's keyword arguments of a file system) may hold keys,
secrets and tokens, and a URL may hold a password or a signed query. The input's
location, which a run records in the output's attributes, goes through `redact`;
messages built from a library's error text, which a failed run records too, go
through `scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["is_secret", "redact", "scrub"]

#: Words of option and query names whose values are secrets (``secret``,
#: ``aws_session_token``, ``X-Amz-Signature``, an ``Authorization`` header; not
#: ``max-keys``).
_SECRET = re.compile(r"secret|token|passw|credential|signature|authori[sz]ation")
_SECRET_WORDS = ("key", "sig", "auth", "apikey")
_MASK = "***"


def redact(url: str) -> str:
    """``url`` without its secrets: a password and secret query values masked.

    Anything but a URL (a local path) is returned as it is.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{_MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, _MASK if is_secret(k) else v) for k, v in pairs],
            safe="*",
        )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def is_secret(name: str) -> bool:
    """Whether an option or query parameter of this name holds a secret."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(w in _SECRET_WORDS or _SECRET.search(w) for w in words)


def _secrets(options: Any) -> set[str]:
    """The text values of secret-looking options, nested ones included.

    Values under 4 characters are left: masking them would garble the message.
    """
    found: set[str] = set()
    if isinstance(options, Mapping):
        for key, value in options.items():
            if isinstance(value, Mapping):
                found |= _secrets(value)
            elif isinstance(value, str) and len(value) >= 4 and is_secret(str(key)):
                found.add(value)
    return found


def scrub(text: str, options: Any = None) -> str:
    """``text`` with the secrets of ``options`` and of any URL in it masked."""
    for secret in sorted(_secrets(options), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return re.sub(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", lambda m: redact(m.group()), text)
