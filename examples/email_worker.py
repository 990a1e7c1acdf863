"""The handler of the command-line quickstart: ``examples.email_worker:send_email``.

``localqueue queue process emails examples.email_worker:send_email`` imports this
module (run it from the repository root) and calls ``send_email`` with each
message's value. Run it as a script to call the handler once by hand.
"""

from __future__ import annotations

import sys


def send_email(job: dict[str, str]) -> None:
    """Pretend to send an email; a real handler would talk to an SMTP server here.

    It writes to stderr, because the CLI prints its own JSON on stdout.
    """
    print(f"sending email to {job['to']}", file=sys.stderr)


if __name__ == "__main__":
    sys.stderr = sys.stdout  # run by hand, nothing else is printing
    send_email({"to": "user@example.com"})
