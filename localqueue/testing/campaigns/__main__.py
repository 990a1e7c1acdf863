"""``python -m localqueue.testing.campaigns URL``: run the campaigns, print their figures."""

from __future__ import annotations

import argparse
import sys

from localqueue.testing.campaigns._children import run_setup
from localqueue.testing.campaigns._report import CampaignReport
from localqueue.testing.campaigns.connection_kills import run_connection_kills
from localqueue.testing.campaigns.contention import run_contention
from localqueue.testing.campaigns.crash import run_crash
from localqueue.testing.campaigns.damage import run_damage
from localqueue.testing.campaigns.disk_full import run_disk_full

CAMPAIGNS = ("crash", "contention", "damage", "disk-full", "connection-kills")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen campaigns against a URL; 1 when any guarantee broke, else 0."""
    parser = argparse.ArgumentParser(
        prog="python -m localqueue.testing.campaigns",
        description="Crash, contention, damage, disk-full and connection-kill campaigns.",
    )
    parser.add_argument("url", help="the store to test; campaigns use a fresh queue in it")
    parser.add_argument("--campaign", choices=[*CAMPAIGNS, "all"], default="all")
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="crash, connection-kills: chaos phase length"
    )
    parser.add_argument(
        "--messages", type=int, default=500, help="damage: messages per damage case"
    )
    parser.add_argument(
        "--disk-size", default="2m", help="disk-full: size of the filesystem filled (tmpfs)"
    )
    parser.add_argument("--processes", type=int, default=8, help="contention: processes")
    parser.add_argument("--rounds", type=int, default=150, help="contention: rounds each")
    parser.add_argument(
        "--setup",
        metavar="MODULE:FUNCTION",
        help="called first in every process, e.g. to register a backend without an entry point",
    )
    args = parser.parse_args(argv)
    reports: list[CampaignReport] = []
    chosen = list(CAMPAIGNS) if args.campaign == "all" else [args.campaign]
    for name in chosen:
        if name == "crash":
            report = run_crash(args.url, seconds=args.seconds, setup=args.setup)
        elif name == "contention":
            report = run_contention(
                args.url, processes=args.processes, rounds=args.rounds, setup=args.setup
            )
        elif name == "connection-kills":
            report = run_connection_kills(args.url, seconds=args.seconds, setup=args.setup)
        elif name == "damage":
            run_setup(args.setup)
            report = run_damage(args.url, messages=args.messages)
        else:
            run_setup(args.setup)
            report = run_disk_full(args.url, size=args.disk_size)
        print(report.line(), flush=True)
        for problem in report.problems if report.failed else []:
            print(f"  {problem}", flush=True)
        reports.append(report)
    return 1 if any(r.failed for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
