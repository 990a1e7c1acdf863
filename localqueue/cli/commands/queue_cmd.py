"""``localqueue queue ...``: put, look at, lease and settle messages by hand."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType

from localqueue._models import MessageState, QueueMessage
from localqueue.cli import exit_codes
from localqueue.cli.errors import CliError
from localqueue.cli.options import (
    FormatOpt,
    IntervalOpt,
    QueueArg,
    RetryStoreOpt,
    RetryStorePathOpt,
    StoreOpt,
    StorePathOpt,
)
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import opened_queue
from localqueue.cli.watch import watch
from localqueue.errors import Empty, LeaseLostError, MessageNotFoundError
from localqueue.protocols import PurgeTarget
from localqueue.queue import PersistentQueue

__all__ = ["queue_app"]

queue_app = typer.Typer(help="Work with the messages of one queue.", no_args_is_help=True)

MessageIdArg = Annotated[str, typer.Argument(metavar="MESSAGE_ID", help="The message's id.")]
LeaseTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--lease-token",
        help="Act only while this lease (printed by pop) is still held; "
        "otherwise exit 4. Without it the operator's command acts in any state.",
    ),
]
CountOpt = Annotated[
    int | None,
    typer.Option("--count", min=1, help="With --watch: stop after this many refreshes."),
]

MESSAGE_COLUMNS = ("id", "state", "deliveries", "priority", "available_at", "leased_by", "value")
DEAD_COLUMNS = ("id", "deliveries", "failed_at", "last_error", "value")
STATS_COLUMNS = ("queue", "ready", "delayed", "inflight", "dead", "total")


def effective_state(message: QueueMessage, now: float | None = None) -> str:
    """``delayed`` for a ready message whose ``available_at`` is still ahead, else its state."""
    now = time.time() if now is None else now
    if message.state is MessageState.READY and message.available_at > now:
        return "delayed"
    return message.state.value


def message_row(message: QueueMessage, *, with_token: bool = False) -> dict[str, Any]:
    """A message as the CLI prints it: the effective state, and ``deliveries`` (times leased)."""
    # The store's "attempts" counts deliveries; "tries" is the worker's count of handler runs.
    names = {"attempts": "deliveries"}
    data = {names.get(key, key): value for key, value in message.as_dict().items()}
    data["state"] = effective_state(message)
    if with_token:
        data["lease_token"] = message.lease_token
    return data


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON lacks: they could not be printed back.
    raise CliError(f"the value holds {name}, which is not JSON; numbers must be finite")


def _read_value(value: str | None, raw: bool) -> Any:
    if value is None:
        if sys.stdin.isatty():
            raise CliError("no value: pass --value or pipe the value on stdin")
        value = sys.stdin.read()
        if raw:
            # `echo text | localqueue queue add q --raw` should store "text", not "text\n".
            value = value.removesuffix("\n").removesuffix("\r")
    if raw:
        return value
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"the value is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "pass --raw to store it as a string"
        ) from None


@queue_app.command("add")
def add(
    queue: QueueArg,
    value: Annotated[
        str | None,
        typer.Option("--value", help="The value as JSON (read from stdin when omitted)."),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Store the value as a string instead of parsing JSON.")
    ] = False,
    delay: Annotated[
        float, typer.Option("--delay", min=0, help="Seconds before it can be delivered.")
    ] = 0.0,
    priority: Annotated[int, typer.Option("--priority", help="Higher is delivered first.")] = 0,
    dedup_key: Annotated[
        str | None,
        typer.Option(
            "--dedup-key", help="Skip the add when a message with this key is still stored."
        ),
    ] = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Add one message; prints the stored message."""
    payload = _read_value(value, raw)
    with opened_queue(queue, store, store_path, create=True) as q:
        message = q.put(payload, delay=delay, priority=priority, dedup_key=dedup_key)
        Printer(fmt).record(message_row(message), title="added")


@queue_app.command("size")
def size(
    queue: QueueArg,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Print how many messages are ready for delivery now."""
    with opened_queue(queue, store, store_path) as q:
        Printer(fmt).record({"queue": queue, "size": q.qsize()})


def _stats(q: PersistentQueue) -> dict[str, Any]:
    return {"queue": q.name, **q.stats().as_dict()}


@queue_app.command("stats")
def stats(
    queue: QueueArg,
    watch_: Annotated[
        bool, typer.Option("--watch", help="Keep printing the counts until Ctrl-C.")
    ] = False,
    interval: IntervalOpt = 2.0,
    count: CountOpt = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Print ready, delayed, inflight, dead and total counts."""
    printer = Printer(fmt)
    with opened_queue(queue, store, store_path) as q:
        if not watch_:
            printer.record(_stats(q), title=f"queue {queue}")
            return

        def line() -> list[dict[str, Any]]:
            return [{"time": time.time(), **_stats(q)}]

        def view() -> RenderableType:
            return Printer.table(
                [{"time": time.time(), **_stats(q)}],
                ("time", *STATS_COLUMNS[1:]),
                title=f"queue {queue} (Ctrl-C to stop)",
            )

        watch(printer, interval=interval, count=count, lines=line, view=view)


@queue_app.command("inspect")
def inspect(
    queue: QueueArg,
    message_id: MessageIdArg,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Print one message by id, in any state (exit 4 if there is none)."""
    with opened_queue(queue, store, store_path) as q:
        Printer(fmt).record(message_row(q.inspect(message_id)), title=f"message {message_id}")


@queue_app.command("dead")
def dead(
    queue: QueueArg,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show at most this many.")
    ] = None,
    watch_: Annotated[
        bool,
        typer.Option("--watch", help="Keep watching; JSON prints each new dead letter once."),
    ] = False,
    interval: IntervalOpt = 2.0,
    count: CountOpt = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """List dead letters, oldest failure first."""
    printer = Printer(fmt)
    title = f"dead letters of {queue}"
    with opened_queue(queue, store, store_path) as q:
        if not watch_:
            rows = [message_row(m) for m in q.dead_letters(limit)]
            printer.rows(rows, DEAD_COLUMNS, title=title)
            return
        seen: set[str] = set()

        def new_lines() -> list[dict[str, Any]]:
            # Watching streams each dead letter once, however long it stays dead.
            fresh = [m for m in q.dead_letters() if m.id not in seen]
            seen.update(m.id for m in fresh)
            return [message_row(m) for m in fresh]

        def view() -> RenderableType:
            letters = q.dead_letters()
            shown = letters[-limit:] if limit else letters
            counts = f"{len(letters)} dead letter(s); Ctrl-C to stop"
            table = Printer.table([message_row(m) for m in shown], DEAD_COLUMNS, title=title)
            return Group(table, counts)

        watch(printer, interval=interval, count=count, lines=new_lines, view=view)


@queue_app.command("requeue-dead")
def requeue_dead(
    queue: QueueArg,
    message_id: Annotated[
        str | None,
        typer.Argument(metavar="[MESSAGE_ID]", help="The dead letter to requeue."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Requeue every dead letter.")] = False,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Return one dead letter (or --all) to delivery with its deliveries count reset."""
    if (message_id is None) == (not all_):
        raise CliError("pass either a MESSAGE_ID or --all")
    with opened_queue(queue, store, store_path) as q:
        if message_id is None:
            requeued = q.requeue_all_dead()
        else:
            try:
                q.requeue_dead(message_id)
            except MessageNotFoundError:
                found = q.store.inspect(q.name, message_id)
                if found is None:
                    raise
                raise CliError(
                    f"message {message_id!r} in queue {queue!r} is {effective_state(found)}, "
                    "not dead: only dead letters can be requeued",
                    exit_codes.NOT_FOUND,
                ) from None
            requeued = 1
        Printer(fmt).record({"queue": queue, "requeued": requeued})


@queue_app.command("pop")
def pop(
    queue: QueueArg,
    worker_id: Annotated[
        str | None,
        typer.Option("--worker-id", help="Recorded on the message as leased_by."),
    ] = None,
    lease_timeout: Annotated[
        float,
        typer.Option("--lease-timeout", min=0.001, help="Seconds the lease lasts."),
    ] = 30.0,
    block: Annotated[
        bool, typer.Option("--block", help="Wait for a message instead of exiting 3.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, help="With --block: most seconds to wait."),
    ] = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Lease the next message and print it with its lease_token (exit 3 if none).

    Settle it afterwards with ack, release or dead-letter; if nobody does, it is
    delivered again when the lease expires.
    """
    with opened_queue(queue, store, store_path, lease_timeout=lease_timeout) as q:
        try:
            message = q.get_message(block, timeout, leased_by=worker_id)
        except Empty:
            raise CliError(f"queue {queue!r} is empty", exit_codes.EMPTY_QUEUE) from None
        Printer(fmt).record(message_row(message, with_token=True), title="leased")


def _settle(
    q: PersistentQueue, message_id: str, token: str | None, action: str, done: bool
) -> None:
    if done:
        return
    if token is not None and q.store.inspect(q.name, message_id) is not None:
        raise LeaseLostError(q.name, message_id, action)
    raise MessageNotFoundError(q.name, message_id)


@queue_app.command("ack")
def ack(
    queue: QueueArg,
    message_id: MessageIdArg,
    lease_token: LeaseTokenOpt = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Delete a processed message for good."""
    with opened_queue(queue, store, store_path) as q:
        done = q.store.ack(queue, message_id, lease_token=lease_token)
        _settle(q, message_id, lease_token, "ack", done)
        Printer(fmt).record({"queue": queue, "id": message_id, "acked": True})


@queue_app.command("release")
def release(
    queue: QueueArg,
    message_id: MessageIdArg,
    delay: Annotated[
        float, typer.Option("--delay", min=0, help="Seconds before it is delivered again.")
    ] = 0.0,
    error: Annotated[
        str | None, typer.Option("--error", help="Recorded as the message's last_error.")
    ] = None,
    lease_token: LeaseTokenOpt = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Give a message back for another delivery, optionally after a delay."""
    with opened_queue(queue, store, store_path) as q:
        done = q.store.release(queue, message_id, lease_token=lease_token, delay=delay, error=error)
        _settle(q, message_id, lease_token, "release", done)
        Printer(fmt).record({"queue": queue, "id": message_id, "released": True, "delay": delay})


@queue_app.command("dead-letter")
def dead_letter(
    queue: QueueArg,
    message_id: MessageIdArg,
    error: Annotated[
        str | None, typer.Option("--error", help="Recorded as the message's last_error.")
    ] = None,
    lease_token: LeaseTokenOpt = None,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Move a message out of delivery into dead-letter storage."""
    with opened_queue(queue, store, store_path) as q:
        done = q.store.dead_letter(queue, message_id, lease_token=lease_token, error=error)
        _settle(q, message_id, lease_token, "dead-letter", done)
        Printer(fmt).record({"queue": queue, "id": message_id, "dead": True})


@queue_app.command("purge")
def purge(
    queue: QueueArg,
    dead_: Annotated[
        bool, typer.Option("--dead", help="Delete the dead letters instead of ready messages.")
    ] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="Delete every message, leased ones included.")
    ] = False,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Delete ready and delayed messages (or --dead, or --all); leased ones stay."""
    if dead_ and all_:
        raise CliError("pass at most one of --dead and --all")
    target: PurgeTarget = "all" if all_ else "dead" if dead_ else "ready"
    with opened_queue(queue, store, store_path) as q:
        purged = q.purge(target)
        Printer(fmt).record({"queue": queue, "target": target, "purged": purged})


@queue_app.command("peek")
def peek(
    queue: QueueArg,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Print the message pop would lease next, without leasing it (exit 3 if none)."""
    with opened_queue(queue, store, store_path) as q:
        message = q.peek()
        if message is None:
            raise CliError(f"queue {queue!r} is empty", exit_codes.EMPTY_QUEUE)
        Printer(fmt).record(message_row(message), title="next")
