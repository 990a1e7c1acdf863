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
