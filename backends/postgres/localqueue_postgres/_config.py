"""What a ``postgresql://`` URL means: connection parameters and typed options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localqueue.errors import ConfigurationError
from localqueue.kit import SERIALIZER_OPTION
from localqueue.serializers import Serializer
from localqueue.urls import Option, StoreURL

__all__ = ["OPTIONS", "SCHEMES", "PostgresConfig"]

SCHEMES = ("postgresql", "postgres")

_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _parse_schema(text: str) -> str:
    if not text or len(text.encode()) > _MAX_IDENTIFIER_BYTES or "\x00" in text:
        raise ValueError(f"must be 1 to {_MAX_IDENTIFIER_BYTES} bytes")
    return text


def _parse_application_name(text: str) -> str:
    if len(text.encode()) > _MAX_IDENTIFIER_BYTES or not text.isprintable():
        raise ValueError(f"must be at most {_MAX_IDENTIFIER_BYTES} printable bytes")
    return text


OPTIONS: dict[str, Option[Any]] = {
    "serializer": SERIALIZER_OPTION,
    "schema": Option(
        _parse_schema, "localqueue", "schema holding the tables (created on first use)"
    ),
    "pool_min_size": Option.integer(1, "connections the pool keeps open", minimum=0),
    "pool_max_size": Option.integer(10, "most connections the pool opens", minimum=1),
    "connect_timeout": Option.number(
        10.0, "seconds to wait for a connection before StoreError", minimum=1.0
    ),
    "lock_timeout": Option.number(
        30.0, "seconds a call waits for a locked row before a *LockedError", minimum=0.001
    ),
    "poll_interval": Option.number(
        5.0, "longest a blocking wait sleeps without re-checking the queue", minimum=0.01
    ),
    "application_name": Option(_parse_application_name, "localqueue", "shown in pg_stat_activity"),
    "sslmode": Option.choice("prefer", _SSL_MODES, "libpq sslmode"),
}
"""The query-string options both stores accept, so one URL opens either."""


@dataclass(frozen=True)
class PostgresConfig:
    """A parsed URL: where to connect and how the stores behave."""

    url: StoreURL
    serializer: Serializer
    schema: str
    pool_min_size: int
    pool_max_size: int
    connect_timeout: float
    lock_timeout: float
    poll_interval: float
    application_name: str
    sslmode: str

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresConfig:
        """Read ``url``'s options.

        Raises:
            ConfigurationError: The scheme is not PostgreSQL's, or an option is invalid.
        """
        if url.scheme not in SCHEMES:
            raise ConfigurationError(f"not a PostgreSQL URL: {url.redacted()!r}")
        values = url.options(OPTIONS)
        if values["pool_max_size"] < values["pool_min_size"]:
            raise ConfigurationError(
                f"{url.scheme}: pool_max_size ({values['pool_max_size']}) is smaller than "
                f"pool_min_size ({values['pool_min_size']})"
            )
        return cls(url=url, **values)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``.

        Absent URL parts are left out so libpq's defaults (``PGHOST``,
        ``PGUSER``, ``~/.pgpass``...) apply, as with ``psql``.
        """
        url = self.url
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(self.connect_timeout)),
            "application_name": self.application_name,
            "sslmode": self.sslmode,
            # Milliseconds; a row lock held longer than this ends the call with a *LockedError.
            "options": f"-c lock_timeout={max(1, round(self.lock_timeout * 1000))}",
        }
        for key, value in (
            ("host", url.host),
            ("port", url.port),
            ("user", url.username),
            ("password", url.password),
            ("dbname", url.path or None),
        ):
            if value is not None:
                kwargs[key] = value
        return kwargs

    def scrub(self, text: str) -> str:
        """``text`` with the URL's password, should it occur, replaced by ``***``."""
        password = self.url.password
        return text.replace(password, "***") if password else text
