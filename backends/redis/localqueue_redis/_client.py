"""Redis plumbing under the stores: building a redis-py client from a URL's options.

URL: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, or
``rediss://`` for TLS. The options are declared (and checked) in
:mod:`localqueue_redis.store`; this module only turns checked options into
connections, and names a client's server without its password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from localqueue.kit import ErrorRule, translating
from localqueue.urls import StoreURL

__all__ = ["connect", "describe", "kill_named"]


def connect(url: StoreURL, options: dict[str, Any]) -> redis.Redis:
    """A new client with its own connection pool (nothing is connected yet).

    Args:
        url: A checked ``redis://`` or ``rediss://`` URL.
        options: Its options, as ``url.options(OPTIONS)`` returned them.
    """
    tls: dict[str, Any] = {}
    connection_class: type[redis.Connection] = redis.Connection
    if url.scheme == "rediss":
        connection_class = redis.SSLConnection
        tls = {"ssl_cert_reqs": options["ssl_cert_reqs"]}
        if options["ssl_ca_certs"]:
            tls["ssl_ca_certs"] = options["ssl_ca_certs"]
    # Retrying a script is safe: every script either is idempotent when
    # replayed (put finds its own ids) or only ever leases a message twice,
    # which at-least-once delivery allows.
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), options["retries"])
    # A blocking pool: a thread finding every connection busy waits for one
    # (up to the socket timeout) instead of failing at once.
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        max_connections=options["max_connections"],
        timeout=options["socket_timeout"],
        connection_class=connection_class,
        host=url.host or "localhost",
        port=url.port or 6379,
        db=int(url.path or 0),
        username=url.username,
        password=url.password,
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["connect_timeout"],
        socket_keepalive=True,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30,
        client_name=f"localqueue:{options['prefix']}",
        **tls,
    )
    return redis.Redis(connection_pool=pool)


def describe(client: redis.Redis) -> str:
    """A password-free description of the server a user-built client talks to."""
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def kill_named(client: redis.Redis, name: bytes, rules: Sequence[ErrorRule]) -> int:
    """Have the server close every connection named ``name`` (``CLIENT KILL``).

    Runs over a connection of its own, like ``client``'s but unnamed, closed
    afterwards, so the killing connection is never among the killed.
    """
    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "client_name"}
    own_pool = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    killer = redis.Redis(connection_pool=own_pool)
    killed = 0
    try:
        with translating(rules):
            own = killer.client_id()
            for info in killer.client_list():
                if str(info.get("name", "")).encode() == name and info["id"] != str(own):
                    killed += int(killer.client_kill_filter(_id=info["id"]))
    finally:
        killer.close()
        own_pool.disconnect()
    return killed
