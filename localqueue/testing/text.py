"""Conformance tests for awkward text and bytes: every store keeps or refuses them alike.

Engines differ on what text they can hold (PostgreSQL's ``text`` refuses NUL,
UTF-8 cannot encode a lone surrogate), so the rules are set once in
:mod:`localqueue.validation` and every store must follow them:

* identifiers (dedup keys, ``leased_by``, retry keys) holding NUL or a lone
  surrogate are refused with a :class:`~localqueue.errors.ValidationError`,
  and nothing stored changes;
* free text (``last_error``) is stored as :func:`~localqueue.validation.storable_text`
  makes it: NUL and lone surrogates escaped, everything else exactly as given;
* payload bytes come back exactly, whatever they hold;
* any other Unicode (emoji, right-to-left scripts, combining marks, control
  characters) is kept exactly.
"""

from __future__ import annotations

import pytest

from localqueue.errors import ValidationError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.testing._base import CODEC
from localqueue.testing.attempt_store import AttemptStoreCase
from localqueue.testing.queue_store import QueueStoreCase
from localqueue.validation import storable_text

__all__ = ["AttemptTextSuite", "TextSuite"]

Q = "text"
LONG = 3600.0

REFUSED_KEYS = ["nul\x00inside", "\x00", "lone\ud800high", "lone\udfffLow"]
"""Identifiers no store can keep as given."""

KEPT_TEXT = [
    "plain",
    "emoji \U0001f389 and astral \U0001d518\U0001d52b",
    "עברית right-to-left",
    "e\u0301 combining",
    "tab\tnewline\nbell\x07 delete\x7f",
    "\ufeffbyte order mark",
    "quote ' \" backslash \\ percent % underscore _",
]
"""Text every store keeps exactly, as identifiers and as error texts."""

ESCAPED_TEXT = ["nul\x00inside", "lone\ud800 and \udc80", "\x00\x00"]
"""Error texts stores keep in their :func:`storable_text` form."""

PAYLOADS = [b"", b"\x00", b"\x00" * 64, bytes(range(256)), b"\xff\xfe\xfd", "é".encode()]


class TextSuite(QueueStoreCase):
    """Awkward identifiers are refused alike, error texts and payloads kept alike."""

    @pytest.mark.parametrize("key", REFUSED_KEYS)
    def test_unstorable_dedup_key_is_refused_and_stores_nothing(
        self, store: QueueStore, key: str
    ) -> None:
        kept = self.put(store, b"kept", queue=Q)
        with pytest.raises(ValidationError):
            self.put(store, b"x", queue=Q, dedup_key=key)
        assert store.stats(Q).total == 1
        assert store.inspect(Q, kept.id) is not None

    @pytest.mark.parametrize("key", REFUSED_KEYS)
    def test_unstorable_worker_id_is_refused_and_leases_nothing(
        self, store: QueueStore, key: str
    ) -> None:
        kept = self.put(store, b"kept", queue=Q)
        with pytest.raises(ValidationError):
            store.lease(Q, lease_timeout=LONG, leased_by=key)
        again = self.lease_one(store, queue=Q)
        assert again.id == kept.id
        assert again.attempts == 1

    @pytest.mark.parametrize("text", KEPT_TEXT)
    def test_unicode_identifiers_are_kept_exactly(self, store: QueueStore, text: str) -> None:
        first = self.put(store, b"x", queue=Q, dedup_key=text)
        second = self.put(store, b"y", queue=Q, dedup_key=text)
        assert second.id == first.id, "the same dedup key must find the same message"
        leased = self.lease_one(store, queue=Q, leased_by=text)
        assert leased.leased_by == text
        stored = store.inspect(Q, leased.id)
        assert stored is not None
        assert stored.leased_by == text
        assert stored.dedup_key == text

    @pytest.mark.parametrize("text", KEPT_TEXT + ESCAPED_TEXT)
    def test_error_texts_are_stored_in_their_storable_form(
        self, store: QueueStore, text: str
    ) -> None:
        expected = storable_text(text)
        released = self.put(store, b"r", queue=Q)
        dead = self.put(store, b"d", queue=Q)
        m = self.lease_one(store, queue=Q)
        assert store.release(Q, m.id, lease_token=m.lease_token, delay=LONG, error=text)
        assert store.dead_letter(Q, dead.id, error=text)
        after_release = store.inspect(Q, released.id)
        after_dead = store.inspect(Q, dead.id)
        assert after_release is not None
        assert after_release.last_error == expected
        assert after_dead is not None
        assert after_dead.last_error == expected
        assert [d.last_error for d in store.dead_letters(Q)] == [expected]

    @pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p[:8].hex() or "empty")
    def test_payload_bytes_come_back_exactly(self, store: QueueStore, payload: bytes) -> None:
        one = self.put(store, payload, queue=Q)
        batch = store.put_many(Q, [payload, payload], codec=CODEC)
        for m in store.lease(Q, lease_timeout=LONG, limit=10):
            assert m.payload == payload
        for message_id in [one.id, *(b.id for b in batch)]:
            stored = store.inspect(Q, message_id)
            assert stored is not None
            assert stored.payload == payload


class AttemptTextSuite(AttemptStoreCase):
    """Retry keys are refused alike; failure texts are kept in their storable form."""

    @pytest.mark.parametrize("key", REFUSED_KEYS)
    def test_unstorable_retry_key_is_refused(self, attempts: AttemptStore, key: str) -> None:
        attempts.begin_attempt("kept")
        for call in (
            lambda: attempts.begin_attempt(key),
            lambda: attempts.get_record(key),
            lambda: attempts.record_failure(key, "boom"),
            lambda: attempts.reset(key),
        ):
            with pytest.raises(ValidationError):
                call()
        record = attempts.get_record("kept")
        assert record is not None
        assert record.attempts == 1

    @pytest.mark.parametrize("text", KEPT_TEXT + ESCAPED_TEXT)
    def test_failure_texts_are_stored_in_their_storable_form(
        self, attempts: AttemptStore, text: str
    ) -> None:
        attempts.begin_attempt("k")
        updated = attempts.record_failure("k", text)
        assert updated is not None
        assert updated.last_error == storable_text(text)
        stored = attempts.get_record("k")
        assert stored is not None
        assert stored.last_error == storable_text(text)

    @pytest.mark.parametrize("text", KEPT_TEXT)
    def test_unicode_retry_keys_are_kept_exactly(self, attempts: AttemptStore, text: str) -> None:
        attempts.begin_attempt(text)
        record = attempts.get_record(text)
        assert record is not None
        assert record.key == text
        assert record.attempts == 1
