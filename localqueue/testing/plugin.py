"""pytest plugin (auto-loaded through the ``pytest11`` entry point).

Adds ``--localqueue-url URL``: run the conformance suite classes that have no
``store_url`` of their own against any store, e.g.::

    pytest --pyargs localqueue.testing --localqueue-url "sqlite:////tmp/q.db"

and :func:`skip_or_fail_unreachable` for backends' server fixtures: when the
environment variable ``LOCALQUEUE_REQUIRE_SERVICES=1`` is set (as CI sets it),
a test that would skip because a server is unreachable fails instead.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES_ENV = "LOCALQUEUE_REQUIRE_SERVICES"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--localqueue-url``."""
    group = parser.getgroup("localqueue")
    group.addoption(
        "--localqueue-url",
        action="store",
        default=None,
        metavar="URL",
        help="store URL the localqueue conformance suite runs against",
    )


def services_required() -> bool:
    """Whether unreachable servers must fail tests instead of skipping them."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "") not in ("", "0", "false", "no")


def skip_or_fail_unreachable(reason: str) -> None:
    """Skip the current test because a server is unreachable, or fail when services are required.

    Backends call this from their fixtures when their server does not answer.
    """
    if services_required():
        pytest.fail(f"{reason} (and {REQUIRE_SERVICES_ENV} is set)", pytrace=False)
    pytest.skip(reason)
