"""What a ``postgresql://`` URL means: connection parameters and typed options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localqueue.errors import ConfigurationError
from localqueue.kit import check_argument
from localqueue.urls import Option, StoreURL

__all__ = ["OPTIONS", "SCHEMES", "PostgresConfig", "check_option_argument"]

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

# PostgresConfig checks its fields with these same options, so a value is accepted
# as an argument exactly when it would be as URL text; these say why not.
_BAD_ARGUMENT = {
    "schema": (
        f"schema must be a str of 1 to {_MAX_IDENTIFIER_BYTES} bytes without NUL, not {{value!r}}"
    ),
    "pool_min_size": "pool_min_size must be an int >= 0, not {value!r}",
    "pool_max_size": "pool_max_size must be an int >= 1, not {value!r}",
    "connect_timeout": "connect_timeout must be a finite number of seconds >= 1, not {value!r}",
    "lock_timeout": "lock_timeout must be a finite number of seconds >= 0.001, not {value!r}",
    "poll_interval": "poll_interval must be a finite number of seconds >= 0.01, not {value!r}",
    "application_name": (
        f"application_name must be a str of at most {_MAX_IDENTIFIER_BYTES} printable bytes, "
        "not {value!r}"
    ),
    "sslmode": f"sslmode must be one of {', '.join(_SSL_MODES)}, not {{value!r}}",
}


def check_option_argument(name: str, value: object) -> None:
    """Refuse ``value`` for option ``name`` unless the same text would pass in the URL.

    Raises:
        ConfigurationError: It would not.
    """
    check_argument(OPTIONS[name], value, _BAD_ARGUMENT[name])


@dataclass(frozen=True)
class PostgresConfig:
    """A parsed URL: where to connect and how the stores behave."""

    url: StoreURL
    schema: str
    pool_min_size: int
    pool_max_size: int
    connect_timeout: float
    lock_timeout: float
    poll_interval: float
    application_name: str
    sslmode: str

    def __post_init__(self) -> None:
        """Check every field as the URL's options would (see :data:`OPTIONS`).

        Raises:
            ConfigurationError: ``url`` is not a PostgreSQL :class:`StoreURL`, a field
                holds what its option would not give from URL text, or
                ``pool_max_size`` is smaller than ``pool_min_size``.
        """
        if not isinstance(self.url, StoreURL):
            raise ConfigurationError(
                f"PostgresConfig needs a StoreURL, not {type(self.url).__name__}"
            )
        if self.url.scheme not in SCHEMES:
            raise ConfigurationError(f"not a PostgreSQL URL: {self.url.redacted()!r}")
        for name in _BAD_ARGUMENT:
            check_option_argument(name, getattr(self, name))
        if self.pool_max_size < self.pool_min_size:
            raise ConfigurationError(
                f"{self.url.scheme}: pool_max_size ({self.pool_max_size}) is smaller than "
                f"pool_min_size ({self.pool_min_size})"
            )

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresConfig:
        """Read ``url``'s options.

        Raises:
            ConfigurationError: The scheme is not PostgreSQL's, or an option is invalid.
        """
        if url.scheme not in SCHEMES:
            raise ConfigurationError(f"not a PostgreSQL URL: {url.redacted()!r}")
        return cls(url=url, **url.options(OPTIONS))

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
