"""Store URLs: parsing, typed options, and redaction of credentials.

Path rules are SQLAlchemy's: ``sqlite:///jobs.db`` is relative to the working
directory, ``sqlite:////var/lib/jobs.db`` is absolute. A string without
``://`` is a SQLite file path. Options go in the query string and each backend
declares the ones it takes, with their types, through :class:`Option`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from localqueue.errors import ConfigurationError, InvalidOptionError

__all__ = ["Option", "StoreURL", "redact"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option(Generic[T]):
    """One query-string option a backend accepts.

    Args:
        parse: Turns the string value into the typed value; raises ``ValueError`` if it cannot.
        default: The value when the option is absent.
        help: One line for the docs and error messages.
    """

    parse: Callable[[str], T]
    default: T
    help: str = ""

    @staticmethod
    def integer(default: int, help: str = "", *, minimum: int | None = None) -> Option[int]:
        """An int option, optionally with a lower bound."""

        def parse(text: str) -> int:
            value = int(text)
            if minimum is not None and value < minimum:
                raise ValueError(f"must be >= {minimum}")
            return value

        return Option(parse, default, help)

    @staticmethod
    def number(default: float, help: str = "", *, minimum: float = 0.0) -> Option[float]:
        """A float option with a lower bound (0 by default)."""

        def parse(text: str) -> float:
            value = float(text)
            if not value >= minimum or value == float("inf"):
                raise ValueError(f"must be a finite number >= {minimum}")
            return value

        return Option(parse, default, help)

    @staticmethod
    def boolean(default: bool, help: str = "") -> Option[bool]:
        """A boolean option: ``1/true/yes/on`` or ``0/false/no/off``."""

        def parse(text: str) -> bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("must be one of 1/0, true/false, yes/no, on/off")

        return Option(parse, default, help)

    @staticmethod
    def choice(default: str, choices: tuple[str, ...], help: str = "") -> Option[str]:
        """A string option restricted to ``choices`` (case-insensitive)."""

        def parse(text: str) -> str:
            lowered = text.lower()
            if lowered not in choices:
                raise ValueError(f"must be one of {', '.join(choices)}")
            return lowered

        return Option(parse, default, help)

    @staticmethod
    def text(default: str, help: str = "") -> Option[str]:
        """A free string option."""
        return Option(str, default, help)


QUEUE_OPTIONS: Final = ("serializer", "max_deliveries")
"""Options any store URL may carry that configure the queue above the store.

``?serializer=`` names the codec :class:`~localqueue.queue.PersistentQueue`
encodes new values with and ``?max_deliveries=`` its delivery cap; the registry
takes them off the URL before a backend sees it, so stores never receive them
(see :func:`localqueue.registry.url_serializer`, :func:`~localqueue.registry.url_max_deliveries`).
"""


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. Its ``repr`` and :meth:`redacted` never show the password."""

    scheme: str
    """Lower-cased scheme, e.g. ``sqlite``."""
    path: str = ""
    """SQLite/LMDB: the file path (SQLAlchemy rules); servers: the path without its ``/``."""
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    query: Mapping[str, str] = field(default_factory=dict)
    """The raw query options; read them through :meth:`options`."""

    @classmethod
    def parse(cls, url: str | os.PathLike[str]) -> StoreURL:
        """Parse a URL, or a plain filesystem path (which means SQLite).

        Raises:
            ConfigurationError: The URL is malformed or repeats an option.
        """
        if isinstance(url, os.PathLike):
            return cls(scheme="sqlite", path=os.fspath(url))
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"a store URL must be a non-empty string, got {url!r}")
        if "://" not in url:
            _refuse_scheme_without_slashes(url)
            return cls(scheme="sqlite", path=url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"malformed store URL {redact(url)!r}: {exc}") from None
        if parts.fragment:
            raise ConfigurationError(f"a store URL takes no '#fragment': {redact(url)!r}")
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in query:
                raise InvalidOptionError(parts.scheme, key, "given more than once")
            query[key] = value
        path = unquote(parts.path)
        # SQLAlchemy's rule: the first slash separates the authority from the path.
        path = path.removeprefix("/")
        return cls(
            scheme=parts.scheme.lower(),
            path=path,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            query=query,
        )

    def options(self, spec: Mapping[str, Option[Any]]) -> dict[str, Any]:
        """Typed option values: the query's, checked against ``spec``, plus defaults.

        Raises:
            InvalidOptionError: An option is not in ``spec`` or its value does not parse.
        """
        unknown = sorted(set(self.query) - set(spec))
        if unknown:
            known = ", ".join(sorted({*spec, *QUEUE_OPTIONS}))
            raise InvalidOptionError(self.scheme, unknown[0], f"unknown option (known: {known})")
        values: dict[str, Any] = {}
        for name, option in spec.items():
            if name not in self.query:
                values[name] = option.default
                continue
            try:
                values[name] = option.parse(self.query[name])
            except ValueError as exc:
                raise InvalidOptionError(
                    self.scheme, name, f"{self.query[name]!r}: {exc}"
                ) from None
        return values

    def without(self, *names: str) -> StoreURL:
        """This URL without the query options ``names``."""
        if not any(name in self.query for name in names):
            return self
        query = {k: v for k, v in self.query.items() if k not in names}
        return dataclasses.replace(self, query=query)

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``: safe for logs and errors."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":***"
            auth += "@"
        netloc = auth + (self.host or "")
        if self.port is not None:
            netloc += f":{self.port}"
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"{self.scheme}://{netloc}/{self.path}" + (f"?{query}" if query else "")

    def to_string(self) -> str:
        """The full URL, password included, that parses back to this one: never log it."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        netloc = auth + (self.host or "")
        if self.port is not None:
            netloc += f":{self.port}"
        query = urlencode(dict(self.query))
        return f"{self.scheme}://{netloc}/{quote(self.path)}" + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted()!r})"

    def __str__(self) -> str:
        return self.redacted()


# A scheme as RFC 3986 spells it; two letters at least, so a drive letter stays a path.
_SCHEME_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(.*)", re.DOTALL)
_HOST_PORT = re.compile(r"[^/]*:[0-9]+(/|$)")


def _refuse_scheme_without_slashes(url: str) -> None:
    """Refuse ``lmdb:jobs``-style strings, which would otherwise be read as SQLite file names."""
    match = _SCHEME_PREFIX.fullmatch(url)
    if match is None:
        return
    scheme, rest = match.groups()
    shown = url
    if "@" in rest:
        # ``postgresql:user:pw@host`` names an authority; its password must not be printed.
        userinfo, _, hostinfo = rest.rpartition("@")
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:***@{hostinfo}" if ":" in userinfo else rest
        shown = f"{scheme}:{rest}"
        suggestion = f"{scheme}://{rest}"
    elif not rest or rest.startswith("?") or _HOST_PORT.match(rest):
        suggestion = f"{scheme}://{rest}"
    else:
        # ``scheme:/abs`` names an absolute path, ``scheme:rel`` a relative one.
        suggestion = f"{scheme}:///{rest}"
    hint = "" if "/" in rest else f" (a SQLite file with ':' in its name is spelled './{shown}')"
    raise ConfigurationError(
        f"{shown!r} looks like a {scheme!r} URL without '//': did you mean {suggestion!r}?{hint}"
    )


def redact(url: str) -> str:
    """Return ``url`` with the password of its authority part replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<malformed URL>"
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()
