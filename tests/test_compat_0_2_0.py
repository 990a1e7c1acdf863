"""The public surface of localqueue 0.2.0, as its README shows it, still works.

Written from the 0.2.0 README (``shared/seeds``): every name at the import
path 0.2.0 had it. Behaviour this project changed on purpose is listed in
``docs/migrating.md`` ("From localqueue 0.2.0") and tested where it lives.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest

TOP_LEVEL = [
    "PersistentQueue",
    "PersistentWorkerConfig",
    "persistent_worker",
    "persistent_async_worker",
    "MemoryQueueStore",
    "SQLiteQueueStore",
    "LMDBQueueStore",
    "QueueStore",
    "QueueStats",
    "QueueMessage",
    "QueueStoreLockedError",
    "AttemptStoreLockedError",
    "MemoryAttemptStore",
    "SQLiteAttemptStore",
    "LMDBAttemptStore",
    "AttemptStore",
    "RetryRecord",
    "PersistentRetryExhausted",
    "configure_default_store",
    "configure_default_store_factory",
    "key_from_argument",
    "key_from_attr",
    "idempotency_key_from_id",
]
FROM_RETRY = [
    "persistent_retry",
    "key_from_argument",
    "key_from_attr",
    "idempotency_key_from_id",
    "MemoryAttemptStore",
    "SQLiteAttemptStore",
    "LMDBAttemptStore",
    "AttemptStoreLockedError",
    "PersistentRetrying",
    "PersistentRetryExhausted",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_a_0_2_0_name_imports_from_localqueue(name: str) -> None:
    module = importlib.import_module("localqueue")
    assert getattr(module, name) is not None
    assert name in dir(module)


@pytest.mark.parametrize("name", FROM_RETRY)
def test_a_0_2_0_name_imports_from_localqueue_retry(name: str) -> None:
    module = importlib.import_module("localqueue.retry")
    assert getattr(module, name) is not None


def test_the_stores_are_the_same_classes_as_their_modules_hold() -> None:
    import localqueue
    import localqueue.retry
    from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
    from localqueue.stores.sqlite import SQLiteAttemptStore, SQLiteQueueStore

    assert localqueue.MemoryQueueStore is MemoryQueueStore  # type: ignore[attr-defined]
    assert localqueue.SQLiteQueueStore is SQLiteQueueStore  # type: ignore[attr-defined]
    assert localqueue.retry.MemoryAttemptStore is MemoryAttemptStore  # type: ignore[attr-defined]
    assert localqueue.retry.SQLiteAttemptStore is SQLiteAttemptStore  # type: ignore[attr-defined]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import localqueue
    import localqueue.retry

    with pytest.raises(AttributeError, match="NoSuchStore"):
        localqueue.NoSuchStore  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="NoSuchStore"):
        localqueue.retry.NoSuchStore  # type: ignore[attr-defined]  # noqa: B018


def test_importing_localqueue_imports_no_store_and_no_extra() -> None:
    script = (
        "import sys\n"
        "import localqueue, localqueue.retry\n"
        "loaded = [m for m in sys.modules if m.startswith('localqueue.stores.') or m == 'lmdb']\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_lmdb_store_names_its_extra_when_lmdb_is_missing() -> None:
    script = (
        "import sys; sys.modules['lmdb'] = None\n"
        "from localqueue import BackendNotInstalledError\n"
        "try:\n"
        "    from localqueue import LMDBQueueStore\n"
        "except BackendNotInstalledError as exc:\n"
        "    print(exc.install_hint)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert "durable-localqueue[lmdb]" in result.stdout, result.stderr


def test_the_readme_manual_control_example_runs(tmp_path: object) -> None:
    from localqueue import PersistentQueue

    class RetryLater(Exception):
        pass

    sent: list[str] = []
    queue = PersistentQueue("emails", store_path=f"{tmp_path}/localqueue_queue.sqlite3")
    queue.put({"to": "user@example.com"})
    message = queue.get_message()
    try:
        sent.append(message.value["to"])
    except RetryLater as exc:
        queue.release(message, delay=30, error=exc)
    except Exception as exc:
        queue.dead_letter(message, error=exc)
        raise
    else:
        queue.ack(message)
    assert sent == ["user@example.com"]
    assert queue.stats().total == 0
    queue.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("localqueue").key_from_argument(""),
        lambda: __import__("localqueue").key_from_argument("job_id", prefix=""),
        lambda: __import__("localqueue").key_from_attr("", "id"),
        lambda: __import__("localqueue").key_from_attr("task", ""),
        lambda: __import__("localqueue").idempotency_key_from_id("task", prefix=""),
    ],
)
def test_key_helpers_refuse_empty_names_and_prefixes(make: Any) -> None:
    from localqueue import ValidationError

    with pytest.raises(ValidationError):
        make()


def test_a_0_2_0_key_function_gets_fn_args_and_kwargs() -> None:
    from localqueue import MemoryAttemptStore, key_from_argument  # type: ignore[attr-defined]
    from localqueue.retry import persistent_retry

    seen: list[tuple[Any, ...]] = []

    def key_of(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        seen.append((fn.__name__, args, kwargs))
        return f"job:{args[0]}"

    store = MemoryAttemptStore()

    @persistent_retry(key_fn=key_of, store=store)
    def job(job_id: str) -> str:
        return job_id

    assert job("7") == "7"
    assert seen == [("job", ("7",), {})]
    # The helpers answer both call styles too.
    assert key_from_argument("job_id", prefix="p")(job, ("8",), {}) == "p:8"
