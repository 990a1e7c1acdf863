"""The ``--watch`` loop shared by ``queue stats`` and ``queue dead``."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rich.console import RenderableType

from localqueue.cli.output import Format, Printer

__all__ = ["watch"]


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Let SIGTERM end a watch as quietly as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def watch(
    printer: Printer,
    *,
    interval: float,
    count: int | None,
    lines: Callable[[], Sequence[Mapping[str, Any]]],
    view: Callable[[], RenderableType],
) -> None:
    """Refresh every ``interval`` seconds until interrupted (Ctrl-C or SIGTERM end it quietly).

    Args:
        printer: Chooses between streaming JSON lines and a live Rich view.
        interval: Seconds between refreshes.
        count: Stop after this many refreshes; ``None`` runs until interrupted.
        lines: JSON mode: the objects to print at this refresh.
        view: Table mode: the renderable showing the current state.
    """
    with _terminate_as_interrupt():
        try:
            _refresh(printer, interval, count, lines, view)
        except KeyboardInterrupt:
            return


def _refresh(
    printer: Printer,
    interval: float,
    count: int | None,
    lines: Callable[[], Sequence[Mapping[str, Any]]],
    view: Callable[[], RenderableType],
) -> None:
    refreshes = 0
    if printer.format is Format.TABLE:
        with printer.live() as live:
            while count is None or refreshes < count:
                if refreshes:
                    time.sleep(interval)
                live.update(view(), refresh=True)
                refreshes += 1
        return
    while count is None or refreshes < count:
        if refreshes:
            time.sleep(interval)
        printer.rows(lines(), ())
        refreshes += 1
