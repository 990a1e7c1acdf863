"""Crash, contention and damage campaigns, runnable against any store URL.

From the command line (one line of figures per campaign; exit status 1 when
anything was lost, double-acked, double-leased, half stored or left behind)::

    python -m localqueue.testing.campaigns URL [--campaign crash|contention|damage|all]

Or from Python: each ``run_*`` function returns a :class:`CampaignReport`.
Campaigns run on a fresh queue of the given store and purge it at the end;
the damage campaign works on a copy in a temporary directory. See
``docs/campaigns.md``.
"""

from localqueue.testing.campaigns._report import (
    CLOCK_MARGIN,
    CampaignReport,
    Lease,
    audit,
    count_double_leases,
)
from localqueue.testing.campaigns.contention import run_contention
from localqueue.testing.campaigns.crash import run_crash
from localqueue.testing.campaigns.damage import DAMAGE, run_damage, store_files

__all__ = [
    "CLOCK_MARGIN",
    "DAMAGE",
    "CampaignReport",
    "Lease",
    "audit",
    "count_double_leases",
    "run_contention",
    "run_crash",
    "run_damage",
    "store_files",
]
