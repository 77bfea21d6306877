"""What every command shares: settings, the (migrated) database, the --json option, and the
error type for mistakes the user can fix.

Commands import the library lazily, inside each function: `omnicascade --help` and
`campaign validate` then start in a fraction of a second instead of loading Temporal,
SQLAlchemy and every provider SDK first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import typer
from sqlalchemy.orm import Session

from omnicascade.config import Settings, load_settings
from omnicascade.errors import UserFacingError

app = typer.Typer(help="omnicascade — durable campaign cascades that stop the moment a "
                       "customer converts.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
campaign_app = typer.Typer(help="Validate, preview and launch campaigns.", no_args_is_help=True)
customers_app = typer.Typer(help="Import customers and show a customer's timeline.",
                            no_args_is_help=True)
runs_app = typer.Typer(help="List runs, show a run's funnel; stop, pause and resume runs.",
                       no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(customers_app, name="customers")
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


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
