"""Child processes of the crash campaign, run as scripts so they can be SIGKILLed for real.

    python campaign_child.py produce URL LOG_DIR NAME COUNT BATCH
    python campaign_child.py consume URL LOG_DIR NAME

Producers log each payload only after ``put``/``put_many`` returned; consumers
log ``processed`` before acking (processing may repeat) and ``acked`` after
``ack`` returned True (that must happen once per message).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from localqueue.registry import open_queue_store

QUEUE = "campaign"
LEASE_TIMEOUT = 1.0


def _log(path: Path) -> object:
    return path.open("a", buffering=1)


def produce(url: str, log_dir: Path, name: str, count: int, batch: int) -> None:
    store = open_queue_store(url)
    codec = store.serializer.name
    with (log_dir / f"put-{name}.log").open("a", buffering=1) as log:
        for start in range(0, count, batch):
            payloads = [f"{name}:b{start}:{i}:{batch}" for i in range(batch)]
            if batch == 1:
                store.put(QUEUE, payloads[0].encode(), codec=codec)
            else:
                store.put_many(QUEUE, [p.encode() for p in payloads], codec=codec)
            log.write("".join(p + "\n" for p in payloads))
    store.close()


def consume(url: str, log_dir: Path, name: str) -> None:
    store = open_queue_store(url)
    rng = random.Random(os.getpid())
    with (
        (log_dir / f"processed-{name}.log").open("a", buffering=1) as processed,
        (log_dir / f"acked-{name}.log").open("a", buffering=1) as acked,
    ):
        while not (log_dir / "stop").exists():
            leased = store.lease(QUEUE, lease_timeout=LEASE_TIMEOUT, leased_by=name, limit=3)
            if not leased:
                store.wait(QUEUE, 0.1)
                continue
            for message in leased:
                processed.write(f"{message.payload.decode()} {message.attempts}\n")
                time.sleep(rng.random() * 0.004)  # the "handler"
                if store.ack(QUEUE, message.id, lease_token=message.lease_token):
                    acked.write(f"{message.id} {message.payload.decode()}\n")
    store.close()


if __name__ == "__main__":
    role, url, folder, who = sys.argv[1:5]
    if role == "produce":
        produce(url, Path(folder), who, int(sys.argv[5]), int(sys.argv[6]))
    else:
        consume(url, Path(folder), who)
