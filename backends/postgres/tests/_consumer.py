"""A consumer process for the restart test: ``python _consumer.py URL OUT_DIR NAME DEADLINE``.

Logs every payload it leases to ``OUT_DIR/NAME.leased`` and every payload it
acked (``ack`` returned ``True``) to ``OUT_DIR/NAME.acked``. A ``StoreError``
(its connection was cut) is counted in ``NAME.errors`` and the loop goes on,
as a real worker would.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from localqueue.errors import StoreError
from localqueue.registry import open_queue_store

QUEUE = "jobs"


def main(url: str, out_dir: str, name: str, deadline_s: float) -> None:
    """Consume until the queue is empty or the deadline passes."""
    out = Path(out_dir)
    deadline = time.monotonic() + deadline_s
    store = open_queue_store(url)
    errors = 0
    try:
        with (
            (out / f"{name}.leased").open("a") as leased_log,
            (out / f"{name}.acked").open("a") as acked_log,
        ):
            while time.monotonic() < deadline:
                try:
                    leased = store.lease(QUEUE, lease_timeout=2.0, leased_by=name, limit=5)
                    if not leased:
                        if store.stats(QUEUE).total == 0:
                            return
                        store.wait(QUEUE, 0.5)
                        continue
                    for message in leased:
                        leased_log.write(message.payload.decode() + "\n")
                        leased_log.flush()
                        time.sleep(0.005)  # some work, so the run outlasts the restarts
                        if store.ack(QUEUE, message.id, lease_token=message.lease_token):
                            acked_log.write(message.payload.decode() + "\n")
                            acked_log.flush()
                except StoreError:
                    errors += 1
                    time.sleep(0.05)
    finally:
        (out / f"{name}.errors").write_text(str(errors))
        store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
