"""The README's command-line quickstart, run as its commands are written.

Only ``/tmp/`` is redirected into the test's own folder, so runs stay apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Command line section has no bash block"
    return match.group(1)


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    script = quickstart_block().replace("/tmp/", f"{tmp_path}/")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sending email to user@example.com" in done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["total"] == 0
    assert not list(ROOT.glob("localqueue_*.sqlite3")), "the quickstart wrote into the checkout"


def test_the_readme_demo_runs_the_main_job(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1]
    commands = re.findall(r"`(localqueue (?:demo|queue dead demo)[^`]*)`", section)
    assert len(commands) == 2, commands
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = [
        subprocess.run(
            command.split(),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for command in commands
    ]
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    *messages, summary, stats = (json.loads(line) for line in done[0].stdout.splitlines())
    shown = sorted((m["status"], m["tries"]) for m in messages)
    assert shown == [("acked", 2), ("dead_lettered", 3)]  # a retried job and a dead letter
    assert summary["processed"] == 300
    assert summary["acked"] == 299
    assert summary["dead_lettered"] == 1
    assert stats == {"queue": "demo", "ready": 0, "delayed": 0, "inflight": 0, "dead": 1} | {
        "total": 1
    }
    (dead,) = (json.loads(line) for line in done[1].stdout.splitlines())
    assert dead["state"] == "dead"
    assert "always fails" in dead["last_error"]
    rerun = subprocess.run(
        commands[0].split(), cwd=tmp_path, env=env, capture_output=True, check=False
    )
    assert rerun.returncode == 0
