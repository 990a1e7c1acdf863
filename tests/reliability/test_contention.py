"""Many processes on one file: lock contention never reaches callers within the timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localqueue.registry import open_queue_store

CHILD = Path(__file__).with_name("contention_child.py")
PROCESSES = 8
ROUNDS = 150


@pytest.mark.parametrize(
    "template",
    [
        "sqlite:///{tmp}/hot.sqlite3?durability=full&timeout=60",
        "sqlite:///{tmp}/hot.sqlite3?durability=normal&timeout=60",
        "lmdb:///{tmp}/hot-lmdb",
    ],
)
def test_many_processes_never_see_a_lock_error(
    template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = template.format(tmp=tmp_path)
    open_queue_store(url).close()  # create the schema once, before the stampede
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), url, str(ROUNDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = [child.communicate(timeout=600) for child in children]
    errors = [err for child, (_, err) in zip(children, results, strict=True) if child.returncode]
    assert not errors, errors[0]
    worst = max(float(out) for out, _ in results)
    with capsys.disabled():
        print(
            f"\ncontention [{url.split('?')[0].split(':')[0]}, {PROCESSES} processes]: "
            f"worst single call {worst * 1000:.1f} ms"
        )
    store = open_queue_store(url)
    stats = store.stats("hot")
    store.close()
    # Every child put 3 messages a round and acked at most 3: nothing is leased any more.
    assert stats.inflight == 0
    assert stats.total == stats.ready
