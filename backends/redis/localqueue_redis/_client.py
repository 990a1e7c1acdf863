"""Turning a ``redis://`` URL into a redis-py client, and redis errors into localqueue's.

URL: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, or
``rediss://`` for TLS. The options are declared in :data:`OPTIONS`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from localqueue.errors import (
    ConfigurationError,
    StoreCorruptedError,
    StoreError,
    StoreLockedError,
)
from localqueue.kit import SERIALIZER_OPTION
from localqueue.serializers import Serializer
from localqueue.urls import Option, StoreURL

__all__ = ["OPTIONS", "RedisConfig", "translate_errors"]

DEFAULT_PREFIX = "localqueue"
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _parse_prefix(text: str) -> str:
    # No ':' so that no prefix's keys can be mistaken for another prefix's.
    if _PREFIX_PATTERN.fullmatch(text) is None:
        raise ValueError("use 1-64 letters, digits, '_', '.' or '-'")
    return text


OPTIONS: dict[str, Option[Any]] = {
    "prefix": Option(
        _parse_prefix,
        DEFAULT_PREFIX,
        "namespace of every key this store writes, so applications can share a server",
    ),
    "serializer": SERIALIZER_OPTION,
    "socket_timeout": Option.number(
        10.0, "seconds to wait for a reply before the call fails", minimum=0.1
    ),
    "connect_timeout": Option.number(5.0, "seconds to wait for a connection", minimum=0.1),
    "retries": Option.integer(
        5, "reconnect attempts after a dropped connection or a timeout", minimum=0
    ),
    "max_connections": Option.integer(
        64, "largest number of connections one store keeps open", minimum=1
    ),
    "ssl_cert_reqs": Option.choice(
        "required", ("required", "optional", "none"), "rediss://: server certificate check"
    ),
    "ssl_ca_certs": Option.text("", "rediss://: CA bundle file to verify the server against"),
}
"""The query-string options of ``redis://`` and ``rediss://`` URLs."""


@dataclass(frozen=True)
class RedisConfig:
    """Everything a store needs from its URL."""

    url: StoreURL
    prefix: str
    serializer: Serializer
    socket_timeout: float
    options: dict[str, Any]

    @classmethod
    def from_url(cls, url: StoreURL) -> RedisConfig:
        """Read and check the URL's options.

        Raises:
            ConfigurationError: The database number or an option is invalid.
        """
        if url.scheme not in ("redis", "rediss"):
            raise ConfigurationError(f"not a Redis URL: {url.redacted()!r}")
        options = url.options(OPTIONS)
        if url.path and not url.path.isdigit():
            raise ConfigurationError(
                f"the path of a Redis URL is a database number, got {url.path!r}"
            )
        return cls(
            url=url,
            prefix=options.pop("prefix"),
            serializer=options.pop("serializer"),
            socket_timeout=options["socket_timeout"],
            options=options,
        )

    def client(self) -> redis.Redis:
        """A new client with its own connection pool (nothing is connected yet)."""
        url, opts = self.url, self.options
        tls: dict[str, Any] = {}
        connection_class: type[redis.Connection] = redis.Connection
        if url.scheme == "rediss":
            connection_class = redis.SSLConnection
            tls = {"ssl_cert_reqs": opts["ssl_cert_reqs"]}
            if opts["ssl_ca_certs"]:
                tls["ssl_ca_certs"] = opts["ssl_ca_certs"]
        # Retrying a script is safe: every script either is idempotent when
        # replayed (put finds its own ids) or only ever leases a message twice,
        # which at-least-once delivery allows.
        retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), opts["retries"])
        # A blocking pool: a thread finding every connection busy waits for one
        # (up to the socket timeout) instead of failing at once.
        pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
            max_connections=opts["max_connections"],
            timeout=opts["socket_timeout"],
            connection_class=connection_class,
            host=url.host or "localhost",
            port=url.port or 6379,
            db=int(url.path or 0),
            username=url.username,
            password=url.password,
            socket_timeout=opts["socket_timeout"],
            socket_connect_timeout=opts["connect_timeout"],
            socket_keepalive=True,
            retry=retry,
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=30,
            client_name=f"localqueue:{self.prefix}",
            **tls,
        )
        return redis.Redis(connection_pool=pool)


@contextlib.contextmanager
def translate_errors(where: str, locked: type[StoreLockedError]) -> Iterator[None]:
    """Map every redis-py error raised inside the block onto localqueue's error tree.

    Args:
        where: The store's redacted URL, named in the message (never a password).
        locked: The error for a server that stays busy or silent past the timeout.
    """
    try:
        yield
    except redis.TimeoutError as exc:
        raise locked(f"{where}: no reply from Redis in time ({exc})") from exc
    except redis.BusyLoadingError as exc:
        raise locked(f"{where}: Redis is still loading its data ({exc})") from exc
    except redis.AuthenticationError as exc:
        raise StoreError(f"{where}: Redis refused the credentials ({exc})") from exc
    except redis.ConnectionError as exc:
        if "No connection available" in str(exc):  # the blocking pool's wait timed out
            raise locked(f"{where}: every connection stayed busy ({exc})") from exc
        raise StoreError(f"{where}: cannot reach Redis ({exc})") from exc
    except redis.ResponseError as exc:
        text = str(exc)
        if text.startswith("BUSY"):
            raise locked(f"{where}: Redis is busy running a script ({exc})") from exc
        if "WRONGTYPE" in text:
            raise StoreCorruptedError(
                f"{where}: a key under this prefix holds data localqueue did not write ({exc})"
            ) from exc
        raise StoreError(f"{where}: Redis error ({exc})") from exc
    except redis.RedisError as exc:
        raise StoreError(f"{where}: Redis error ({exc})") from exc
