"""Printing results: JSON lines for machines, Rich tables for people.

Every result is one JSON object on one line of stdout (``--format json``, the
default); a list prints one line per item, and ``--watch`` keeps printing
lines as it goes. ``--format table`` renders the same data with Rich, and a
live-updating table under ``--watch``. Errors never go to stdout.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["Format", "Printer"]

# Columns holding Unix times, shown as local date-times in tables.
_TIME_FIELDS = frozenset(
    {"created_at", "available_at", "leased_until", "failed_at", "time", "first_attempt_at"}
)


class Format(enum.StrEnum):
    """How results are printed."""

    JSON = "json"
    """One JSON object per line (for scripts and ``jq``)."""
    TABLE = "table"
    """Rich tables (for people)."""


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return str(value)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def to_json(data: Mapping[str, Any]) -> str:
    """One compact, valid JSON line; bytes become ``{"base64": ...}``.

    A non-finite float (stored through the library, which msgpack allows) is
    printed as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: bare
    ``NaN`` is not JSON and would break ``jq``.
    """
    try:
        return json.dumps(data, ensure_ascii=False, default=_jsonable, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), ensure_ascii=False, default=_jsonable)


def _cell(key: str, value: object) -> Text:
    # Text, not str: stored values are data and must never be read as Rich markup.
    if value is None:
        return Text("")
    if key in _TIME_FIELDS and isinstance(value, int | float) and not isinstance(value, bool):
        return Text(datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds"))
    if isinstance(value, str):
        return Text(value)
    return Text(json.dumps(value, ensure_ascii=False, default=_jsonable))


class Printer:
    """Prints a command's results in the chosen :class:`Format`.

    Args:
        fmt: The output format.
    """

    def __init__(self, fmt: Format = Format.JSON) -> None:
        self.format = Format(fmt)

    @property
    def console(self) -> Console:
        """A Rich console on the current stdout (looked up late, so tests can capture it)."""
        return Console(file=sys.stdout, soft_wrap=False)

    def record(self, data: Mapping[str, Any], *, title: str | None = None) -> None:
        """Print one result: a JSON line, or a two-column table of its fields."""
        if self.format is Format.JSON:
            self._line(data)
            return
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in data.items():
            table.add_row(key, _cell(key, value))
        self.console.print(table)

    def rows(
        self,
        items: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        title: str | None = None,
    ) -> None:
        """Print a list: one JSON line per item, or one table with ``columns``."""
        if self.format is Format.JSON:
            for item in items:
                self._line(item)
            return
        self.console.print(self.table(items, columns, title=title))

    @staticmethod
    def table(
        items: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
    ) -> Table:
        """A Rich table of ``items`` restricted to ``columns``."""
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for item in items:
            table.add_row(*(_cell(column, item.get(column)) for column in columns))
        return table

    @contextmanager
    def live(self) -> Iterator[Live]:
        """A live display on stdout for ``--watch --format table``; update it with ``.update()``."""
        with Live(console=self.console, auto_refresh=False, transient=False) as live:
            yield live

    @staticmethod
    def _line(data: Mapping[str, Any]) -> None:
        sys.stdout.write(to_json(data) + "\n")
        sys.stdout.flush()
