"""`omnicascade config check`: the effective configuration, where each value came from, and
what would stop production (config/check.py decides; this prints)."""

from __future__ import annotations

import typer
from rich.table import Table

from omnicascade.cli import display
from omnicascade.cli.common import JSON, app

config_app = typer.Typer(help="Inspect the configuration (environment and .env).",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(as_json: bool = JSON,
          production: bool = typer.Option(False, "--production", help="Judge by the "
                                          "production rules even when OMNICASCADE_ENV is "
                                          "development: problems then exit 1.")) -> None:
    """Every setting (secrets masked) and its source: env, .env, generated file or default.
    Exit 1 when production is judged (OMNICASCADE_ENV=production or --production) and
    something would stop it; in development those are warnings."""
    from omnicascade.config.check import report
    data, code = report(production)
    if as_json:
        display.print_json(data)
        raise typer.Exit(code)
    table = Table("variable", "value", "source", title=f"configuration ({data['env']})")
    for row in data["settings"]:
        value = "–" if row["value"] is None else str(row["value"])
        table.add_row(row["variable"], value, row["source"])
    if data["settings"]:
        display.console.print(table)
    for warning in data["warnings"]:
        display.err_console.print(f"[yellow]warning:[/] {warning}", highlight=False,
                                  markup=True, soft_wrap=True)
    for problem in data["problems"]:
        display.err_console.print(f"[red]problem:[/] {problem}", highlight=False,
                                  soft_wrap=True)
    judged = "production" if data["production"] else "development"
    summary = (f"{len(data['problems'])} problem(s) would stop production" if code
               else f"no problem for {judged}")
    display.console.print(summary, highlight=False)
    raise typer.Exit(code)
