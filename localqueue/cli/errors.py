"""How failures become one line on stderr and an exit status.

Commands raise :class:`CliError` for their own refusals and let
:mod:`localqueue.errors` exceptions propagate; :func:`exit_code_for` maps both
onto :mod:`localqueue.cli.exit_codes`. Passwords of the store URLs in use are
remembered by :func:`remember_url` and masked in every error line.
"""

from __future__ import annotations

import threading

from localqueue.cli import exit_codes
from localqueue.errors import (
    ConfigurationError,
    Empty,
    LeaseLostError,
    LocalQueueError,
    MessageNotFoundError,
    SerializationError,
    StoreError,
    StoreNotFoundError,
    ValidationError,
)
from localqueue.urls import StoreURL

__all__ = ["CliError", "exit_code_for", "redact_secrets", "remember_url"]

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


class CliError(Exception):
    """Raised by a command to stop with a message and a chosen exit status.

    Attributes:
        exit_code: One of :mod:`localqueue.cli.exit_codes`.
    """

    def __init__(self, message: str, exit_code: int = exit_codes.USAGE_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for(exc: BaseException) -> int:
    """The exit status that reports ``exc``."""
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, Empty):
        return exit_codes.EMPTY_QUEUE
    if isinstance(exc, MessageNotFoundError | LeaseLostError):
        return exit_codes.NOT_FOUND
    if isinstance(exc, ConfigurationError | ValidationError | SerializationError):
        return exit_codes.USAGE_ERROR
    if isinstance(exc, StoreNotFoundError):
        return exit_codes.STORE_NOT_FOUND
    if isinstance(exc, StoreError):
        return exit_codes.STORE_ERROR
    if isinstance(exc, LocalQueueError):
        return exit_codes.STORE_ERROR
    return exit_codes.INTERNAL_ERROR


def remember_url(url: str) -> None:
    """Note the password of a store URL, so :func:`redact_secrets` masks it."""
    try:
        password = StoreURL.parse(url).password
    except LocalQueueError:
        return
    if password:
        with _secrets_lock:
            _secrets.add(password)


def redact_secrets(text: str) -> str:
    """``text`` with every remembered password replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
