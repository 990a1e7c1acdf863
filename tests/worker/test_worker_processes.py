"""Real worker processes on a SQLite store: killed, terminated, restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import localqueue
from localqueue import MessageState, PersistentQueue, open_attempt_store

WAIT = 60.0
SOURCE_ROOT = str(Path(localqueue.__file__).resolve().parent.parent)

# Run by each worker process: argv = queue URL, retry URL, work dir, mode, max_tries,
# concurrency. The handler logs to work_dir/log; "block" makes it hang until killed,
# "slow" makes it take 1.5 s, "fail" makes it raise.
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from localqueue import PersistentQueue, PersistentWorkerConfig
    from localqueue.runner import Worker

    queue_url, retry_url, work, mode, max_tries, concurrency = sys.argv[1:]
    work = Path(work)

    def log(line):
        with open(work / "log", "a") as f:
            f.write(line + "\\n")

    def handle(value):
        log(f"start {value}")
        (work / f"started-{value}").touch()
        if mode == "block":
            time.sleep(600)
        if mode == "slow":
            time.sleep(1.5)
        if mode == "fail":
            raise ConnectionError("still down")
        log(f"done {value}")

    config = PersistentWorkerConfig(
        store=retry_url,
        max_tries=int(max_tries),
        lease_timeout=2.0,
        before=lambda state: log(f"attempt {state.attempt_number}"),
    )
    queue = PersistentQueue("jobs", store=queue_url)
    stats = Worker(queue, handle, config=config, concurrency=int(concurrency)).run(max_messages=None
        if mode == "slow" else 1)
    print(json.dumps({"acked": stats.acked, "dead": stats.dead_lettered}), flush=True)
    """
)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "worker.py").write_text(SCRIPT)
    return tmp_path


@pytest.fixture
def urls(work: Path) -> tuple[str, str]:
    return f"sqlite:///{work}/q.sqlite3", f"sqlite:///{work}/retries.sqlite3"


@pytest.fixture
def spawn(work: Path, urls: tuple[str, str]) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(mode: str, max_tries: int = 3, concurrency: int = 1) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": SOURCE_ROOT}
        proc = subprocess.Popen(
            [
                sys.executable,
                str(work / "worker.py"),
                *urls,
                str(work),
                mode,
                str(max_tries),
                str(concurrency),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def wait_for(proc: subprocess.Popen[str], path: Path, count: int = 1) -> None:
    """Wait until ``count`` handlers have started in ``proc``."""
    deadline = time.monotonic() + WAIT
    while len(list(path.glob("started-*"))) < count:
        if proc.poll() is not None:
            pytest.fail(f"worker exited early with {proc.returncode}: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, f"timed out waiting for {count} handlers"
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str]) -> dict[str, int]:
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


def log_lines(work: Path) -> list[str]:
    return (work / "log").read_text().splitlines()


@pytest.mark.parametrize("after_restart", ["succeed", "fail"])
def test_sigkill_mid_handler_redelivers_and_keeps_the_retry_budget(
    work: Path, urls: tuple[str, str], spawn: object, after_restart: str
) -> None:
    with PersistentQueue("jobs", store=urls[0]) as queue:
        message = queue.put("m1")
    first = spawn("block", 2)  # type: ignore[operator]
    wait_for(first, work)
    first.send_signal(signal.SIGKILL)
    first.wait(WAIT)

    second = spawn(after_restart, 2)  # type: ignore[operator]
    result = finish(second)
    # The first attempt counted although its process died: the restart runs attempt 2.
    assert log_lines(work) == ["attempt 1", "start m1", "attempt 2", "start m1"] + (
        ["done m1"] if after_restart == "succeed" else []
    )
    with PersistentQueue("jobs", store=urls[0]) as queue:
        if after_restart == "succeed":
            assert result == {"acked": 1, "dead": 0}
            assert queue.stats().total == 0
        else:
            # max_tries=2 was spent by the killed attempt and this one.
            assert result == {"acked": 0, "dead": 1}
            dead = queue.inspect(message.id)
            assert dead.state is MessageState.DEAD
            assert dead.last_error == "ConnectionError: still down"
            assert dead.attempts == 2
    attempts = open_attempt_store(urls[1])
    try:
        record = attempts.get_record(message.id)
        if after_restart == "succeed":
            assert record is None
        else:
            assert record is not None
            assert (record.attempts, record.exhausted) == (2, True)
    finally:
        attempts.close()


def test_sigterm_finishes_in_flight_messages_and_exits_0(
    work: Path, urls: tuple[str, str], spawn: object
) -> None:
    with PersistentQueue("jobs", store=urls[0]) as queue:
        queue.put_many([f"m{n}" for n in range(6)])
    proc = spawn("slow", 3, 2)  # type: ignore[operator]
    wait_for(proc, work, 2)
    proc.send_signal(signal.SIGTERM)
    result = finish(proc)
    lines = log_lines(work)
    started = {line.split()[1] for line in lines if line.startswith("start")}
    done = {line.split()[1] for line in lines if line.startswith("done")}
    assert len(started) >= 2
    assert done == started
    assert result == {"acked": len(started), "dead": 0}
    with PersistentQueue("jobs", store=urls[0]) as queue:
        stats = queue.stats()
        assert stats.inflight == 0
        assert stats.ready == 6 - len(started)
