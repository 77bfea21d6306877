"""What every command shares: settings, the (migrated) database, the --json option, and the
error type for mistakes the user can fix.

Commands import the library lazily, inside each function: `omnicascade --help` and
`campaign validate` then start in a fraction of a second instead of loading Temporal,
SQLAlchemy and every provider SDK first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import typer
from sqlalchemy.orm import Session

from omnicascade.config import Settings, load_settings
from omnicascade.errors import UserFacingError


def _flags_without_type_tags() -> None:
    """Typer's rich help asks every option for its type (`<str>`, `<path>`), flags too, and
    prints `--live <bool>` and `--help <bool>` as if they took a value; its plain help, like
    click, leaves the type out for a flag. Teach the one method the rich panel calls the
    same rule, once, for every command (including the built-in --help)."""
    from typer.core import TyperOption
    typed = getattr(TyperOption, "display_type_rich", None)
    if typed is None or getattr(typed, "flags_untyped", False):
        return  # another typer: nothing to correct, or already corrected

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:  # takes no value: nothing to name
            return None
        shown: str | None = typed(self, ctx)
        return shown
    display_type_rich.flags_untyped = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_type_tags()
app = typer.Typer(help="omnicascade — durable campaign cascades that stop the moment a "
                       "customer converts.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
campaign_app = typer.Typer(help="Validate, preview and launch campaigns.", no_args_is_help=True)
customers_app = typer.Typer(help="Import, show, export, erase and readmit customers.",
                            no_args_is_help=True)
runs_app = typer.Typer(help="List runs, show a run's funnel; stop, pause and resume runs.",
                       no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(customers_app, name="customers")
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
# Every listing pages (reports/paging.py: default 100, at most 500 a page).
LIMIT = typer.Option(None, "--limit", help="At most this many rows (default 100, at most "
                                           "500).")
CURSOR = typer.Option(None, "--cursor", help="Start after the page before: the cursor it "
                                             "printed.")


class UserError(UserFacingError):
    """A mistake the user can fix: printed without a traceback, exit code 1."""


def settings() -> Settings:
    return load_settings()


def db_url(s: Settings | None = None) -> str:
    """The app database, migrated. SQLite (embedded) is migrated on first use; a shared
    PostgreSQL is migrated only by `omnicascade db upgrade`, so it is just checked."""
    from omnicascade.db.check import ensure_schema
    s = s or settings()
    ensure_schema(s.db_url)
    return s.db_url


def session(s: Settings | None = None) -> AbstractContextManager[Session]:
    from omnicascade.db.session import session_scope
    return session_scope(db_url(s))


def reading(s: Settings | None = None) -> AbstractContextManager[Session]:
    """A read-only session: listings and reports never block the senders."""
    from omnicascade.db.session import read_scope
    return read_scope(db_url(s))


def more(cursor: str | None) -> None:
    """Say where the next page starts (on stderr: stdout keeps the `--json` shape)."""
    if cursor is not None:
        from omnicascade.cli.display import err_console
        err_console.print(f"more: run again with --cursor {cursor}", highlight=False,
                          soft_wrap=True)
