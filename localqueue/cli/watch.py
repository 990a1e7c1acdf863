"""The ``--watch`` loop shared by ``queue stats`` and ``queue dead``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import RenderableType

from localqueue.cli.output import Format, Printer

__all__ = ["watch"]


def watch(
    printer: Printer,
    *,
    interval: float,
    count: int | None,
    lines: Callable[[], Sequence[Mapping[str, Any]]],
    view: Callable[[], RenderableType],
) -> None:
    """Refresh every ``interval`` seconds until interrupted (Ctrl-C ends it quietly).

    Args:
        printer: Chooses between streaming JSON lines and a live Rich view.
        interval: Seconds between refreshes.
        count: Stop after this many refreshes; ``None`` runs until interrupted.
        lines: JSON mode: the objects to print at this refresh.
        view: Table mode: the renderable showing the current state.
    """
    refreshes = 0
    try:
        if printer.format is Format.TABLE:
            with printer.live() as live:
                while count is None or refreshes < count:
                    if refreshes:
                        time.sleep(interval)
                    live.update(view(), refresh=True)
                    refreshes += 1
        else:
            while count is None or refreshes < count:
                if refreshes:
                    time.sleep(interval)
                printer.rows(lines(), ())
                refreshes += 1
    except KeyboardInterrupt:
        return
