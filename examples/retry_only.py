"""Persistent retries without a queue: the retry budget of each key survives restarts.

Another system delivers the work (a web hook, a cron job); ``persistent_retry``
only keeps count of the attempts per order id in an attempt store. Run it with
``python examples/retry_only.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from typing import Any

from tenacity import retry_if_exception_type, stop_after_attempt, wait_none

from localqueue import PersistentRetryExhausted
from localqueue.retry import key_from_argument, persistent_retry

calls: Counter[str] = Counter()


def make_charge(store_url: str) -> Any:
    """The decorated function, as each run of the program would define it."""

    @persistent_retry(
        key_fn=key_from_argument("order_id", prefix="charge"),
        store=store_url,
        stop=stop_after_attempt(3),
        wait=wait_none(),  # a real client would back off, e.g. wait_exponential()
        retry=retry_if_exception_type(ConnectionError),
        reraise=True,
    )
    def charge(order_id: str, amount: int) -> str:
        calls[order_id] += 1
        if order_id == "order-2" or calls[order_id] == 1:
            raise ConnectionError("payment gateway timed out")
        return f"charged {amount} for {order_id}"

    return charge


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{tmp}/retries.db"
        charge = make_charge(store_url)

        print(charge("order-1", 30), f"after {calls['order-1']} calls")
        try:
            charge("order-2", 50)
        except ConnectionError as exc:
            print(f"order-2 failed after {calls['order-2']} calls: {exc}")

        # A new run of the program: same store, so order-2's budget is still spent
        # and the function is not called again.
        charge = make_charge(store_url)
        try:
            charge("order-2", 50)
        except PersistentRetryExhausted as exc:
            print(f"after a restart: {exc}")
        print(f"order-2 was called {calls['order-2']} times in all")

        charge.retry.reset("charge:order-2")  # e.g. once the gateway is fixed
        print("budget reset:", charge.retry.get_record("charge:order-2") is None)


if __name__ == "__main__":
    main()
