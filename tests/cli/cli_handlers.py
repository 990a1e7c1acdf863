"""Tiny handlers for the ``process`` tests; they leave traces in the working directory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

OUTBOX = "outbox.jsonl"


def send_email(job: dict[str, Any]) -> None:
    """Pretend to send: append the job to ``outbox.jsonl``."""
    with Path(OUTBOX).open("a", encoding="utf-8") as outbox:
        outbox.write(json.dumps(job) + "\n")


def always_fails(job: Any) -> None:
    """Fail like an unreachable mail server."""
    raise ConnectionError("smtp down")


def slow_send(job: dict[str, Any]) -> None:
    """Mark the start in ``started``, take ``job["seconds"]``, then send."""
    Path("started").write_text("yes")
    time.sleep(float(job["seconds"]))
    send_email(job)


def sent() -> list[Any]:
    """What the handlers sent so far."""
    path = Path(OUTBOX)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
