"""How a missing piece is installed: the one place that names the distributions.

The import package is ``localqueue``; the distribution on the package index is
``durable-localqueue`` (the index's ``localqueue`` is an unrelated project), and
the server backends are ``durable-localqueue-postgres`` and
``durable-localqueue-redis``. Hints give the index command and the one that
works from a source checkout, so they hold before and after a release.
"""

from __future__ import annotations

from typing import Final

DISTRIBUTION: Final = "durable-localqueue"
"""The core's distribution name."""


def extra_hint(extra: str) -> str:
    """The commands that install the core's optional ``extra``."""
    return (
        f"pip install '{DISTRIBUTION}[{extra}]' (from a source checkout: pip install '.[{extra}]')"
    )


def backend_hint(name: str) -> str:
    """The commands that install the server backend ``name`` (``postgres``, ``redis``)."""
    return (
        f"pip install {DISTRIBUTION}-{name} (from a source checkout: pip install ./backends/{name})"
    )
