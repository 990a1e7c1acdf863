"""``localqueue queue exec``: process messages with a shell command, from a script.

Each message's value is written to the command's stdin as JSON; exit status 0
acks the message, anything else counts as a failure and is retried, then
dead-lettered. This script drives the ``localqueue`` command line (extra
``cli``) the way a shell user or a systemd unit would. Run it with
``python examples/exec_command.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The installed script, or the same program through the interpreter.
CLI = (
    [shutil.which("localqueue") or ""]
    if shutil.which("localqueue")
    else [
        sys.executable,
        "-m",
        "localqueue.cli",
    ]
)

# The handler: a shell command that reads the JSON value and fails on a missing "to".
HANDLER = [
    "sh",
    "-c",
    'value=$(cat); case "$value" in *\'"to"\'*) echo "sent: $value";; *) exit 3;; esac',
]


def localqueue(*args: str) -> list[dict[str, object]]:
    """Run one ``localqueue`` command; return its JSON output lines."""
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 3):  # 3: the queue was empty
        sys.exit(f"localqueue {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = [
            "--store",
            f"sqlite:///{Path(tmp) / 'jobs.db'}",
            "--retry-store",
            f"sqlite:///{Path(tmp) / 'retries.db'}",
        ]
        for value in ({"to": "ada@example.com"}, {"to": "grace@example.com"}, {"cc": "nobody"}):
            localqueue("queue", "add", "emails", "--value", json.dumps(value), *stores)

        for _ in range(10):  # one message per run; stop once nothing is ready
            if localqueue("queue", "stats", "emails", *stores)[0]["ready"] == 0:
                break
            localqueue("queue", "exec", "emails", "--max-tries", "2", *stores, "--", *HANDLER)

        stats = localqueue("queue", "stats", "emails", *stores)[0]
        print(f"acked {3 - int(str(stats['total']))}, dead letters {stats['dead']}")
        for dead in localqueue("queue", "dead", "emails", *stores):
            print(f"dead letter {dead['value']}: {str(dead['last_error']).splitlines()[0]}")


if __name__ == "__main__":
    main()
