"""Crash, contention, damage, disk-full and connection-kill campaigns, for any store URL.

From the command line (one line of figures per campaign; exit status 1 when
anything was lost, double-acked, double-leased, half stored or left behind)::

    python -m localqueue.testing.campaigns URL [--campaign NAME|all]

Or from Python: each ``run_*`` function returns a :class:`CampaignReport`.
Campaigns run on a fresh queue of the given store and purge it at the end;
the damage and disk-full campaigns work on copies in temporary directories
(file stores) or on a fresh queue (damage, server stores). See
``docs/campaigns.md``.
"""

from localqueue.testing.campaigns._report import (
    CLOCK_MARGIN,
    CampaignReport,
    Lease,
    audit,
    count_double_leases,
)
from localqueue.testing.campaigns.connection_kills import run_connection_kills
from localqueue.testing.campaigns.contention import run_contention
from localqueue.testing.campaigns.crash import run_crash
from localqueue.testing.campaigns.damage import DAMAGE, RECORD_EVERY, run_damage, store_files
from localqueue.testing.campaigns.disk_full import (
    fill_to_the_last_byte,
    run_disk_full,
    small_filesystem,
)

__all__ = [
    "CLOCK_MARGIN",
    "DAMAGE",
    "RECORD_EVERY",
    "CampaignReport",
    "Lease",
    "audit",
    "count_double_leases",
    "fill_to_the_last_byte",
    "run_connection_kills",
    "run_contention",
    "run_crash",
    "run_damage",
    "run_disk_full",
    "small_filesystem",
    "store_files",
]
