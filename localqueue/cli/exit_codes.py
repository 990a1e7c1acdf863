"""The exit statuses of the ``localqueue`` command, in one place.

Scripts branch on these, so each outcome has its own number and the numbers
never change meaning. ``docs/cli.md`` lists them for users.
"""

from __future__ import annotations

__all__ = [
    "DAMAGED",
    "EMPTY_QUEUE",
    "INTERNAL_ERROR",
    "NOT_FOUND",
    "STORE_ERROR",
    "STORE_NOT_FOUND",
    "SUCCESS",
    "USAGE_ERROR",
]

SUCCESS = 0
"""The command did what was asked."""
INTERNAL_ERROR = 1
"""An unexpected error (a bug): rerun with ``--debug`` and report the traceback."""
USAGE_ERROR = 2
"""Bad flags or arguments, a bad store URL or setting, a bad value, or the ``cli`` extra missing."""
EMPTY_QUEUE = 3
"""Nothing to deliver: ``pop`` or ``peek`` found no available message."""
NOT_FOUND = 4
"""No message with that id (or, with ``--lease-token``, the lease is no longer held)."""
STORE_ERROR = 5
"""The store failed: locked past its timeout, corrupted, unreachable, closed."""
DAMAGED = 6
"""``check`` or ``repair`` found damage that is still there."""
STORE_NOT_FOUND = 7
"""A command that only reads or changes existing messages named a store that does not exist."""
