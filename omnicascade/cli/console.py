"""`omnicascade console …`: the web console's sessions."""

from __future__ import annotations

import typer

from omnicascade.cli import display
from omnicascade.cli.common import JSON, app, db_url, settings

console_app = typer.Typer(help="The web console: end its sessions.", no_args_is_help=True)
app.add_typer(console_app, name="console")


@console_app.command("logout-all")
def logout_all(as_json: bool = JSON) -> None:
    """End every console session, on every API process (after a leaked cookie or password,
    or when someone leaves): everyone logs in again."""
    from omnicascade.api.console.sessions import end_all
    s = settings()
    ended = end_all(db_url(s), s.console_idle_s)
    if as_json:
        display.print_json({"ended": ended})
    else:
        display.console.print(f"{ended} console session{'' if ended == 1 else 's'} ended; "
                              f"everyone logs in again", highlight=False)
