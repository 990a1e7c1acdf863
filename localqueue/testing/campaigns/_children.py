"""Child processes of the campaigns, started by :func:`spawn` (or, being module-level
functions, by :mod:`multiprocessing` with the ``spawn`` start method).

Each child writes its own log files (see :func:`localqueue.testing.campaigns.audit`),
line-buffered and only after the call it records returned, so a SIGKILL at any
moment leaves at most one half line, which the audit ignores.
"""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from localqueue.errors import StoreError
from localqueue.registry import open_queue_store
from localqueue.testing._base import CODEC

T = TypeVar("T")

TOLERANT_ENV = "LOCALQUEUE_CAMPAIGN_TOLERANT"
"""Env var: when set, children retry calls that raise a ``StoreError`` (connection kills)."""


def _call(call: Callable[[], T]) -> T:
    """``call()``; in tolerant children, retried on a ``StoreError`` with a short back-off.

    A retried write may have committed before its connection died: a retried
    put can store a message twice (the audit counts payloads, not ids), and a
    retried ack may report False for a message it removed (logged as ACKING
    first, so the audit judges it leniently).
    """
    if not os.environ.get(TOLERANT_ENV):
        return call()
    delay = 0.01
    for _ in range(200):
        try:
            return call()
        except StoreError:
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    return call()


def produce(url: str, queue: str, logs: str, name: str, count: int, batch: int) -> None:
    """Put ``count`` messages in batches of ``batch``, logging each after it returned."""
    store = _call(lambda: open_queue_store(url))
    codec = CODEC
    with (Path(logs) / f"put-{name}.log").open("a", buffering=1) as log:
        for start in range(0, count, batch):
            payloads = [f"{name}:b{start}:{i}:{batch}" for i in range(batch)]
            if batch == 1:
                _call(partial(store.put, queue, payloads[0].encode(), codec=codec))
            else:
                encoded = [p.encode() for p in payloads]
                _call(partial(store.put_many, queue, encoded, codec=codec))
            log.write("".join(p + "\n" for p in payloads))
    store.close()


def consume(url: str, queue: str, logs: str, name: str, lease_timeout: float) -> None:
    """Lease, "process" and ack until ``logs/stop`` exists, logging every lease and ack."""
    store = _call(lambda: open_queue_store(url))
    rng = random.Random(os.getpid())
    folder = Path(logs)
    with (folder / f"lease-{name}.log").open("a", buffering=1) as log:
        while not (folder / "stop").exists():
            leased = _call(
                lambda: store.lease(queue, lease_timeout=lease_timeout, leased_by=name, limit=3)
            )
            now = time.time()
            if not leased:
                _call(lambda: store.wait(queue, 0.1))
                continue
            log.write(
                "".join(
                    f"LEASE {m.id} {m.lease_token} {name} {now:.6f} "
                    f"{m.leased_until or 0.0:.6f} {m.attempts} {m.payload.decode()}\n"
                    for m in leased
                )
            )
            for m in leased:
                time.sleep(rng.random() * 0.004)  # the "handler"
                started = time.time()
                attempt = f"{m.id} {m.lease_token} {started:.6f} {m.payload.decode()}\n"
                # Logged first, so an ack whose result a SIGKILL swallowed is not "lost".
                log.write(f"ACKING {attempt}")
                acked = _call(partial(store.ack, queue, m.id, lease_token=m.lease_token))
                verdict = "ACK" if acked else "NACK"
                log.write(f"{verdict} {attempt[:-1]} {time.time():.6f}\n")
    store.close()


def hammer(url: str, queue: str, rounds: int, out: str) -> None:
    """Put, lease, ack and count in a loop; write the slowest call's seconds, or the error."""
    store = open_queue_store(url)
    codec = CODEC
    worst = 0.0
    try:
        for i in range(rounds):
            for call in (
                lambda i=i: store.put(queue, f"{i}".encode(), codec=codec),
                lambda: store.put_many(queue, [b"a", b"b"], codec=codec),
                lambda: [
                    store.ack(queue, m.id, lease_token=m.lease_token)
                    for m in store.lease(queue, lease_timeout=30, limit=3)
                ],
                lambda: store.stats(queue),
            ):
                started = time.perf_counter()
                call()
                worst = max(worst, time.perf_counter() - started)
    except Exception as exc:
        Path(out).write_text(f"error {type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        raise
    finally:
        store.close()
    Path(out).write_text(f"ok {worst:.6f}")


SETUP_ENV = "LOCALQUEUE_CAMPAIGN_SETUP"
"""Env var: ``module:function`` each child calls before opening the store (to ``register``)."""


def run_setup(setup: str | None) -> None:
    """Import ``module`` and call ``function()`` for a ``module:function`` reference."""
    if setup:
        module, _, name = setup.partition(":")
        getattr(importlib.import_module(module), name)()


def spawn(
    role: str, *args: object, setup: str | None = None, tolerant: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``role`` (``produce``, ``consume`` or ``hammer``) with ``args`` in a new process.

    The child runs this file by path rather than through :mod:`multiprocessing`
    so it imports only the store registry, not the whole conformance suite
    (``localqueue.testing`` imports pytest and hypothesis): a child that takes a
    second to start would mostly be killed before it did anything. ``tolerant``
    children retry store calls that raise a ``StoreError`` (see :func:`_call`).
    """
    env = dict(os.environ)
    if setup:
        env[SETUP_ENV] = setup
    if tolerant:
        env[TOLERANT_ENV] = "1"
    return subprocess.Popen([sys.executable, __file__, role, *map(str, args)], env=env)


if __name__ == "__main__":
    _role, *_args = sys.argv[1:]
    run_setup(os.environ.get(SETUP_ENV))
    if _role == "produce":
        produce(_args[0], _args[1], _args[2], _args[3], int(_args[4]), int(_args[5]))
    elif _role == "consume":
        consume(_args[0], _args[1], _args[2], _args[3], float(_args[4]))
    else:
        hammer(_args[0], _args[1], int(_args[2]), _args[3])
