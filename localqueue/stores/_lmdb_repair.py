"""Integrity check and repair of an LMDB queue store, over the whole environment at once.

:func:`survey` reads every record and index entry in one transaction and
works out the indexes the records call for; :meth:`Survey.problems` reports
where the stored ones differ, :meth:`Survey.repair` makes them agree. The
records are the truth, except that one which cannot be decoded is replaced by
a dead letter keeping its bytes (see ``lmdb._damaged_record``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localqueue.stores.lmdb import (
    _DEAD,
    _DEAD_TAIL,
    _F_DEDUP,
    _F_QUEUE,
    _F_SEQ,
    _F_STATE,
    _STATE_BYTE,
    _TAIL,
    ORPHAN_QUEUE,
    _BadRecord,
    _damaged_record,
    _dead_key,
    _decode,
    _hash_key,
    _next_seq,
    _pack,
    _prefix,
    _ready_key,
    _unsortable,
)
from localqueue.validation import MAX_PRIORITY, QUEUE_NAME_PATTERN

if TYPE_CHECKING:
    from localqueue.stores._lmdb_env import Environment, Txn
    from localqueue.stores.lmdb import Record

_INDEXES = ("delivery", "dead-letter")


def _text(id_key: bytes) -> str:
    return id_key.decode(errors="backslashreplace")


@dataclass
class _Ref:
    """One index entry pointing at a message id."""

    index: str  # "delivery", "dead-letter" or "dedup"
    key: bytes
    value: bytes
    queue: str


@dataclass
class Survey:
    """Every record and index entry of one environment, as one transaction saw them."""

    shared: Environment
    records: dict[bytes, Record | _BadRecord] = field(default_factory=dict)
    refs: dict[bytes, list[_Ref]] = field(default_factory=dict)
    entries: list[_Ref] = field(default_factory=list)

    def _db(self, index: str) -> Any:
        shared = self.shared
        return {"delivery": shared.ready, "dead-letter": shared.dead, "dedup": shared.dedup}[index]

    def _expected(self, id_key: bytes, rec: Record) -> set[tuple[str, bytes, bytes]]:
        """The (index, key, value) entries a sound record calls for."""
        prefix = _prefix(rec[_F_QUEUE])
        if rec[_F_STATE] == _DEAD:
            wanted = {("dead-letter", _dead_key(prefix, rec), id_key)}
        else:
            wanted = {("delivery", _ready_key(prefix, rec), _STATE_BYTE[rec[_F_STATE]] + id_key)}
        if rec[_F_DEDUP] is not None:
            wanted.add(("dedup", prefix + _hash_key(rec[_F_DEDUP]), id_key))
        return wanted

    def problems(self) -> list[str]:
        """One line per disagreement between the records and the indexes."""
        found: list[str] = []
        for id_key, rec in self.records.items():
            if isinstance(rec, _BadRecord):
                found.append(f"message {_text(id_key)}: record is damaged: {rec.reason}")
            else:
                indexed = sum(1 for ref in self.refs.get(id_key, ()) if ref.index != "dedup")
                if indexed != 1:
                    found.append(f"message {_text(id_key)} is indexed {indexed} times")
        for ref in self.entries:
            target = self.records.get(_ref_id(ref))
            what = f"message {_text(_ref_id(ref))}: {ref.index} index entry"
            if target is None:
                found.append(f"{what} points at a missing record")
            elif not isinstance(target, _BadRecord) and (
                (ref.index, ref.key, ref.value) not in self._expected(_ref_id(ref), target)
            ):
                found.append(f"{what} is stale")
        return found

    def repair(self, txn: Txn, now: float) -> list[str]:
        """Make the indexes agree with the records, in the survey's write transaction."""
        shared = self.shared
        done: list[str] = []
        sound: dict[bytes, Record] = {}
        moved: set[bytes] = set()  # reported once: their index changes are part of the move
        for id_key, found in self.records.items():
            if not isinstance(found, _BadRecord):
                sound[id_key] = found
                continue
            sound[id_key] = rec = self._stand_in(txn, id_key, found, now)
            txn.put(id_key, _pack(rec), db=shared.messages)
            moved.add(id_key)
            done.append(
                f"message {_text(id_key)}: record could not be decoded: {found.reason}; "
                f"moved aside as a dead letter of queue {rec[_F_QUEUE]!r}"
            )
        wanted: set[tuple[str, bytes, bytes]] = set()
        dedup_claims: dict[bytes, list[tuple[int, bytes]]] = {}
        for id_key, rec in sound.items():
            for entry in self._expected(id_key, rec):
                if entry[0] == "dedup":
                    dedup_claims.setdefault(entry[1], []).append((rec[_F_SEQ], id_key))
                else:
                    wanted.add(entry)
        stored = {(ref.index, ref.key, ref.value) for ref in self.entries}
        for key, claims in dedup_claims.items():
            owners = {value for index, k, value in stored if index == "dedup" and k == key}
            kept = [id_key for _, id_key in claims if id_key in owners] or [min(claims)[1]]
            wanted.add(("dedup", key, kept[0]))
        for ref in self.entries:
            if (ref.index, ref.key, ref.value) in wanted:
                continue
            txn.delete(ref.key, db=self._db(ref.index))
            id_key = _ref_id(ref)
            if id_key in moved:
                continue
            why = (
                "a missing record"
                if id_key not in self.records
                else "a record that does not call for it"
            )
            done.append(
                f"message {_text(id_key)}: dropped a {ref.index} index entry pointing at {why}"
            )
        for index, key, value in sorted(wanted - stored):
            txn.put(key, value, db=self._db(index))
            id_key = value if index != "delivery" else value[1:]
            if id_key in moved:
                continue
            done.append(f"message {_text(id_key)}: indexed again in the {index} index")
        return done

    def _stand_in(self, txn: Txn, id_key: bytes, bad: _BadRecord, now: float) -> Record:
        """The dead letter replacing an undecodable record, placed by its index entries."""
        for ref in self.refs.get(id_key, ()):
            n = len(_prefix(ref.queue))
            if ref.index == "delivery":
                inverted, time_key, seq = _TAIL.unpack_from(ref.key, n)
                at = _unsortable(time_key)
                return _damaged_record(ref.queue, bad, now, MAX_PRIORITY - inverted, seq, at)
            if ref.index == "dead-letter":
                failed_key, seq = _DEAD_TAIL.unpack_from(ref.key, n)
                return _damaged_record(ref.queue, bad, now, 0, seq, _unsortable(failed_key))
        queue = next((ref.queue for ref in self.refs.get(id_key, ())), ORPHAN_QUEUE)
        return _damaged_record(queue, bad, now, 0, _next_seq(self.shared, txn, 1), now)


def _ref_id(ref: _Ref) -> bytes:
    return ref.value[1:] if ref.index == "delivery" else ref.value


def _entry_queue(key: bytes) -> str | None:
    name, sep, _ = key.partition(b"\0")
    try:
        queue = name.decode()
    except UnicodeDecodeError:
        return None
    return queue if sep and QUEUE_NAME_PATTERN.fullmatch(queue) else None


def survey(shared: Environment, txn: Txn) -> Survey:
    """Read every record and index entry of the environment in ``txn``."""
    result = Survey(shared)
    for id_key, raw in txn.cursor(db=shared.messages):
        result.records[bytes(id_key)] = _decode(bytes(id_key), bytes(raw))
    for index in (*_INDEXES, "dedup"):
        for key, value in txn.cursor(db=result._db(index)):
            queue = _entry_queue(bytes(key))
            ref = _Ref(index, bytes(key), bytes(value), queue or "")
            if queue is not None and _well_formed(ref):
                result.refs.setdefault(_ref_id(ref), []).append(ref)
            result.entries.append(ref)
    return result


def _well_formed(ref: _Ref) -> bool:
    """Whether an entry's key has its index's shape (so its fields can be read back)."""
    tail = len(ref.key) - len(_prefix(ref.queue))
    if ref.index == "delivery":
        return tail == _TAIL.size and ref.value[:1] in _STATE_BYTE.values()
    if ref.index == "dead-letter":
        return tail == _DEAD_TAIL.size
    return tail == 20
