"""The ``localqueue`` Typer application: command groups and error reporting.

Every failure ends in :meth:`_ReportingGroup.invoke`: one line on stderr and
the matching status from :mod:`localqueue.cli.exit_codes`; the traceback is
only shown with ``--debug`` (or ``LOCALQUEUE_DEBUG=1``), and the status stays
the same. An empty queue is an outcome, not an error: its line has no
``error:``.
"""

from __future__ import annotations

import io
import os
import sys
import traceback
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from localqueue._version import __version__
from localqueue.cli import exit_codes
from localqueue.cli.commands.config_cmd import config_app
from localqueue.cli.commands.demo_cmd import demo
from localqueue.cli.commands.integrity_cmd import check, repair
from localqueue.cli.commands.migrate_cmd import migrate
from localqueue.cli.commands.queue_cmd import queue_app
from localqueue.cli.commands.queues_cmd import queues
from localqueue.cli.commands.work_cmd import register as register_work_commands
from localqueue.cli.errors import exit_code_for, redact_secrets

__all__ = ["app"]

_DEBUG = "localqueue.debug"


def _is_framework_exception(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("typer", "click")


class _ReportingGroup(TyperGroup):
    """The root group: turns exceptions into one stderr line and an exit status."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_flags([self])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`localqueue queue dead q | head -1`): what it read is
            # all it wanted, so stop quietly; stdout goes to devnull so the exit flush is silent.
            _silence_stdout()
            raise typer.Exit(exit_codes.SUCCESS) from None
        except Exception as exc:
            # Usage errors, Exit and Abort belong to Typer/Click, which report them itself.
            if _is_framework_exception(exc):
                raise
            code = exit_code_for(exc)
            if ctx.meta.get(_DEBUG):
                # The traceback replaces the one-line report; the status must not change.
                traceback.print_exc(file=sys.stderr)
                raise typer.Exit(code) from None
            # Engine messages may span lines (psycopg's hints do); the report stays one line.
            text = " ".join((str(exc) or type(exc).__name__).split())
            if code == exit_codes.INTERNAL_ERROR:
                text = f"unexpected {type(exc).__name__}: {text} (rerun with --debug for details)"
            label = "" if code == exit_codes.EMPTY_QUEUE else "error: "
            print(f"localqueue: {label}{redact_secrets(text)}", file=sys.stderr)
            raise typer.Exit(code) from None


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _plain_flags(commands: Iterable[Any]) -> None:
    """Show flags (``--raw``, ``--help``) without a value type: they take none."""
    for command in commands:
        # The help option is made on first use and cached; make it now to mark it too.
        help_option = command.get_help_option(typer.Context(command))
        for param in [*command.params, *([help_option] if help_option else [])]:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        _plain_flags(getattr(command, "commands", {}).values())


app = typer.Typer(
    name="localqueue",
    cls=_ReportingGroup,
    help="Durable local job queues: add, inspect, lease and process messages.",
    no_args_is_help=True,
    add_completion=False,
    # Locals may hold store URLs with passwords; never print them.
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"localqueue {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="LOCALQUEUE_DEBUG", help="Show tracebacks instead of one-line errors."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Durable local job queues: add, inspect, lease and process messages."""
    ctx.meta[_DEBUG] = debug


register_work_commands(queue_app)
app.add_typer(config_app, name="config")
app.add_typer(queue_app, name="queue")
app.command("queues")(queues)
app.command("demo")(demo)
app.command("check")(check)
app.command("repair")(repair)
app.command("migrate")(migrate)
