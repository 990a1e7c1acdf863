"""Crash campaign: producers and consumers SIGKILLed at random, then an audit.

Every message whose ``put`` returned must be processed and acked (processing
may repeat, an ack returning True may not), no batch may be half stored, and
nothing may stay leased. Run alone with ``pytest -m crash -s`` to see the
summary lines; ``LOCALQUEUE_CAMPAIGN_SECONDS`` makes the chaos phase longer.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from localqueue.registry import open_queue_store

pytestmark = pytest.mark.crash

CHILD = Path(__file__).with_name("campaign_child.py")
CHAOS_SECONDS = float(os.environ.get("LOCALQUEUE_CAMPAIGN_SECONDS", "8"))
PRODUCERS, CONSUMERS = 2, 3


@dataclass
class Summary:
    engine: str
    messages: int
    kills: int
    redeliveries: int
    lost: int
    double_acked: int
    half_batches: int
    left_in_store: int

    def line(self) -> str:
        return (
            f"crash campaign [{self.engine}]: messages={self.messages} kills={self.kills} "
            f"redeliveries={self.redeliveries} lost={self.lost} "
            f"double-acked={self.double_acked} half-batches={self.half_batches} "
            f"left-in-store={self.left_in_store}"
        )


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(CHILD), *args])


def _lines(folder: Path, pattern: str) -> list[str]:
    return [line for p in folder.glob(pattern) for line in p.read_text().splitlines() if line]


def run_campaign(engine: str, url: str, logs: Path) -> Summary:
    rng = random.Random(1234)
    serial = 0

    def producer() -> subprocess.Popen[bytes]:
        nonlocal serial
        serial += 1
        batch = rng.choice([1, 1, 20])
        return _spawn(
            "produce", url, str(logs), f"p{serial}", str(rng.randint(100, 300)), str(batch)
        )

    def consumer() -> subprocess.Popen[bytes]:
        nonlocal serial
        serial += 1
        return _spawn("consume", url, str(logs), f"c{serial}")

    producers = [producer() for _ in range(PRODUCERS)]
    consumers = [consumer() for _ in range(CONSUMERS)]
    kills = 0
    try:
        end = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.1, 0.4))
            pool = producers if rng.random() < 0.4 else consumers
            victim = rng.randrange(len(pool))
            if pool[victim].poll() is None:
                pool[victim].send_signal(signal.SIGKILL)
                pool[victim].wait()
                kills += 1
            pool[victim] = producer() if pool is producers else consumer()
            # Replace producers that finished on their own, to keep load up.
            producers = [p if p.poll() is None else producer() for p in producers]
        for p in producers:
            assert p.wait(timeout=120) == 0
        store = open_queue_store(url)
        try:
            deadline = time.monotonic() + 120
            while store.stats("campaign").total and time.monotonic() < deadline:
                time.sleep(0.2)
            left = store.stats("campaign").total
        finally:
            store.close()
    finally:
        (logs / "stop").touch()
        for c in consumers:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        for p in producers:
            if p.poll() is None:
                p.kill()
                p.wait()

    returned = set(_lines(logs, "put-*.log"))
    processed_lines = [line.rsplit(" ", 1) for line in _lines(logs, "processed-*.log")]
    processed = {payload for payload, _ in processed_lines}
    redeliveries = sum(1 for _, attempts in processed_lines if int(attempts) > 1)
    acked = Counter(line.split(" ", 1)[0] for line in _lines(logs, "acked-*.log"))
    batches: dict[str, set[int]] = {}
    sizes: dict[str, int] = {}
    for payload in processed:
        producer_name, batch, index, size = payload.split(":")
        batches.setdefault(f"{producer_name}:{batch}", set()).add(int(index))
        sizes[f"{producer_name}:{batch}"] = int(size)
    half = sum(1 for key, seen in batches.items() if len(seen) != sizes[key])
    return Summary(
        engine=engine,
        messages=len(processed),
        kills=kills,
        redeliveries=redeliveries,
        lost=len(returned - processed),
        double_acked=sum(1 for n in acked.values() if n > 1),
        half_batches=half,
        left_in_store=left,
    )


@pytest.mark.parametrize("engine", ["sqlite", "lmdb"])
def test_crash_campaign(engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = (
        f"sqlite:///{tmp_path}/campaign.sqlite3?durability=normal"
        if engine == "sqlite"
        else f"lmdb:///{tmp_path}/campaign-lmdb"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    summary = run_campaign(engine, url, logs)
    with capsys.disabled():
        print("\n" + summary.line())
    assert summary.messages > 0
    assert summary.kills > 0
    assert summary.lost == 0
    assert summary.double_acked == 0
    assert summary.half_batches == 0
    assert summary.left_in_store == 0
