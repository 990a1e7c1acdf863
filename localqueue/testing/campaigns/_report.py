"""The result record every campaign returns, and the audit of the consumers' logs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_MARGIN = 0.1
"""Seconds of clock skew and logging delay forgiven when judging two leases to overlap."""

KILLS_LOG = "kills.log"
"""Log of a campaign's connection-kill rounds, one ``started ended`` line each."""


@dataclass
class CampaignReport:
    """Figures of one campaign run; :attr:`failed` says whether a guarantee broke.

    ``lost``, ``double_acked``, ``double_leased``, ``half_batches``,
    ``left_in_store``, ``blocked`` (intact messages a store neither delivered nor
    reported) and ``errors`` (calls that raised where none may; in the
    damage campaign, errors not typed as ``StoreError``) must be zero on a
    correct store;
    the other figures say how hard the store was pushed. ``extra`` holds
    figures specific to one campaign (printed after the common ones).
    """

    campaign: str
    store: str
    messages: int = 0
    kills: int = 0
    redeliveries: int = 0
    lost: int = 0
    double_acked: int = 0
    double_leased: int = 0
    half_batches: int = 0
    left_in_store: int = 0
    blocked: int = 0
    errors: int = 0
    worst_wait: float = 0.0
    seconds: float = 0.0
    skipped: str | None = None
    extra: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether anything was lost, double-acked, double-leased, half stored, left behind
        or blocked, or an error was raised where none may be."""
        return bool(
            self.lost
            or self.double_acked
            or self.double_leased
            or self.half_batches
            or self.left_in_store
            or self.blocked
            or self.errors
        )

    def line(self) -> str:
        """One line of figures, as the command prints it."""
        head = f"{self.campaign} campaign [{self.store}]:"
        if self.skipped is not None:
            return f"{head} skipped: {self.skipped}"
        figures = (
            f"messages={self.messages} kills={self.kills} redeliveries={self.redeliveries} "
            f"lost={self.lost} double-acked={self.double_acked} "
            f"double-leased={self.double_leased} half-batches={self.half_batches} "
            f"left-in-store={self.left_in_store} blocked={self.blocked} errors={self.errors} "
            f"worst-wait={self.worst_wait * 1000:.1f}ms"
        )
        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        verdict = "FAILED" if self.failed else "ok"
        return f"{head} {figures}{extra} time={self.seconds:.1f}s {verdict}"


@dataclass(frozen=True)
class Lease:
    """One lease a consumer got, as logged: ``LEASE id token consumer leased_at leased_until``."""

    message_id: str
    token: str
    consumer: str
    leased_at: float
    leased_until: float


def _lines(folder: Path, pattern: str) -> list[list[str]]:
    return [
        line.split(" ")
        for path in sorted(folder.glob(pattern))
        # A SIGKILLed child may leave a half-written last line: only whole lines count.
        for line in path.read_text().split("\n")[:-1]
        if line
    ]


def count_double_leases(leases: list[Lease], settled: dict[str, float]) -> list[str]:
    """Descriptions of leases granted while an earlier lease on the same id was valid.

    ``settled`` maps a lease token to the time its holder started a successful
    ack (or one whose result a SIGKILL cut off); a lease stays valid until then
    or until its ``leased_until``, whichever comes first (a SIGKILLed
    consumer's lease stays valid until it expires).
    ``leased_at`` is logged after ``lease()`` returned, the latest the lease can
    have been granted, and :data:`CLOCK_MARGIN` is forgiven on top.
    """
    by_id: dict[str, list[Lease]] = {}
    for lease in leases:
        by_id.setdefault(lease.message_id, []).append(lease)
    found: list[str] = []
    for message_id, group in by_id.items():
        group.sort(key=lambda lease: lease.leased_at)
        for i, later in enumerate(group):
            for earlier in group[:i]:
                if earlier.token == later.token:
                    continue
                valid_until = min(earlier.leased_until, settled.get(earlier.token, float("inf")))
                if later.leased_at < valid_until - CLOCK_MARGIN:
                    found.append(
                        f"{message_id} leased by {later.consumer} at {later.leased_at:.3f} "
                        f"while {earlier.consumer}'s lease ran until {valid_until:.3f}"
                    )
                    break
    return found


def audit(report: CampaignReport, logs: Path) -> CampaignReport:
    """Fill ``report``'s delivery figures from the producers' and consumers' logs in ``logs``.

    Logs, one record a line, written with ``\\n`` only after the call returned:
    ``put-*.log``: ``payload`` for each message whose ``put``/``put_many`` returned;
    ``lease-*.log``: ``LEASE id token consumer leased_at leased_until attempts payload``
    after ``lease`` returned; ``ACKING id token started_at payload`` before
    ``ack``, then ``ACK id token started_at payload ended_at`` (it returned
    True) or ``NACK ...`` (False); :data:`KILLS_LOG`, when present: the
    ``started ended`` times of each round of connection kills.
    Payloads are ``producer:batch:index:size``, so half-stored batches show.
    A message is lost when its put returned and no ack of it returned True,
    unless an ack of it was cut off by a SIGKILL before its result was logged,
    or returned False while connections were being killed (it may have deleted
    the message before its reply was lost): those are counted in
    ``extra["ack-unconfirmed"]``, not as lost.
    """
    kills = [(float(row[0]), float(row[1])) for row in _lines(logs, KILLS_LOG) if len(row) == 2]
    returned = {row[0] for row in _lines(logs, "put-*.log")}
    leases: list[Lease] = []
    settled: dict[str, float] = {}
    acked: Counter[str] = Counter()
    acked_payloads: set[str] = set()
    seen: set[str] = set()
    redelivered: set[str] = set()
    pending: dict[str, str] = {}  # token -> payload of an ack whose result was never logged
    for row in _lines(logs, "lease-*.log"):
        if row[0] == "LEASE" and len(row) == 8:
            leases.append(Lease(row[1], row[2], row[3], float(row[4]), float(row[5])))
            seen.add(row[7])
            if int(row[6]) > 1:
                redelivered.add(row[1])
        elif row[0] == "ACKING" and len(row) == 5:
            pending[row[2]] = row[4]
        elif row[0] in ("ACK", "NACK") and len(row) == 6:
            if row[0] == "NACK" and _overlaps(float(row[3]), float(row[5]), kills):
                continue  # judged like an ack whose result was never seen
            pending.pop(row[2], None)
            # A refused ack leaves its lease standing until leased_until, as the store said.
            if row[0] == "ACK":
                settled[row[2]] = float(row[3])
                acked[row[1]] += 1
                acked_payloads.add(row[4])
    for row in _lines(logs, "lease-*.log"):
        if row[0] == "ACKING" and len(row) == 5 and row[2] in pending:
            settled[row[2]] = float(row[3])  # may have succeeded: judged leniently
    double_leases = count_double_leases(leases, settled)
    batches: dict[str, set[int]] = {}
    sizes: dict[str, int] = {}
    for payload in seen | returned:
        producer, batch, index, size = payload.split(":")
        batches.setdefault(f"{producer}:{batch}", set()).add(int(index))
        sizes[f"{producer}:{batch}"] = int(size)
    unconfirmed = set(pending.values()) - acked_payloads
    lost = sorted(returned - acked_payloads - unconfirmed)
    report.extra["ack-unconfirmed"] = len(unconfirmed)
    report.messages = len(seen | returned)
    report.redeliveries = len(redelivered)
    report.lost = len(lost)
    report.double_acked = sum(1 for n in acked.values() if n > 1)
    report.double_leased = len(double_leases)
    report.half_batches = sum(1 for key, got in batches.items() if len(got) != sizes[key])
    report.problems += [f"lost: {p} ({_history(p, logs)})" for p in lost[:5]] + [
        f"double lease: {d}" for d in double_leases[:5]
    ]
    return report


def _overlaps(started: float, ended: float, spans: list[tuple[float, float]]) -> bool:
    """Whether ``[started, ended]`` meets any of ``spans`` (within :data:`CLOCK_MARGIN`)."""
    return any(
        started - CLOCK_MARGIN <= end and begin <= ended + CLOCK_MARGIN for begin, end in spans
    )


def _history(payload: str, logs: Path) -> str:
    """What the consumers' logs say happened to ``payload``, for a problem report."""
    events = [row[0] for row in _lines(logs, "lease-*.log") if payload in row]
    return ", ".join(events) if events else "never leased"
