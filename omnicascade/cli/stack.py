"""Running omnicascade: the embedded stack, the demo, and the scaled deployment's pieces."""

from __future__ import annotations

import asyncio

import typer

from omnicascade.cli import display
from omnicascade.cli.common import app, db_app, db_url, settings


def warn_unknown() -> None:
    """A WARNING per OMNICASCADE_* variable no setting reads (a misspelt limit is otherwise
    silently not there), with the closest real name."""
    from omnicascade.config.sources import warn_unknown as warn
    warn()


@app.command()
def server(host: str | None = typer.Option(None, help="API host (default 127.0.0.1)."),
           port: int | None = typer.Option(None, help="API port (default 8787).")) -> None:
    """Run everything on this machine: Temporal dev server + worker + HTTP API."""
    from omnicascade.runtime.deploy import configure_logging
    from omnicascade.runtime.server import EmbeddedStack, serve

    def announce(stack: EmbeddedStack) -> None:
        s = stack.settings
        console_file = s.home_dir / "console_password"
        display.console.print(f"[bold green]omnicascade is running[/]\n"
                              f"  Console       {stack.api_url}/  (password: "
                              f"{'from environment' if s.console_password else console_file})\n"
                              f"  HTTP API      {stack.api_url}  (OpenAPI: {stack.api_url}/docs)\n"
                              f"  Temporal UI   {stack.ui_url}\n"
                              f"  Worker metrics {stack.metrics_url}\n"
                              f"  Temporal      {s.resolved_temporal_address()}\n"
                              f"  state         {s.home_dir}\n"
                              f"  webhook secret "
                              f"{'from environment' if s.webhook_secret else s.secret_file}\n"
                              f"  API token      "
                              f"{'from environment' if s.api_token else s.api_token_file}"
                              f"  (reads: Authorization: Bearer …)\n"
                              f"Press Ctrl-C to stop.")
    configure_logging(settings().log_format)
    warn_unknown()
    asyncio.run(serve(settings(), host=host, port=port, announce=announce))
    display.console.print("stopped.")


@app.command()
def demo(keep: bool = typer.Option(False, help="Keep the demo's state directory.")) -> None:
    """End-to-end demo on the embedded stack: import, launch, convert, show the funnel."""
    from omnicascade.cli.demo import run_demo
    raise typer.Exit(asyncio.run(run_demo(keep=keep)))


@app.command()
def worker() -> None:
    """Run a worker (scaled deployment: any number, against OMNICASCADE_TEMPORAL_ADDRESS)."""
    from omnicascade.runtime.deploy import configure_logging, run_worker_process
    db_url()
    configure_logging(settings().log_format)
    warn_unknown()
    asyncio.run(run_worker_process(settings()))


@app.command()
def api(host: str | None = typer.Option(None), port: int | None = typer.Option(None)) -> None:
    """Run the HTTP API alone (scaled deployment)."""
    from omnicascade.runtime.deploy import configure_logging, run_api_process
    db_url()
    configure_logging(settings().log_format)
    warn_unknown()
    run_api_process(settings(), host=host, port=port)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (idempotent)."""
    from omnicascade.db.migrate import upgrade
    s = settings()
    upgrade(s.db_url)
    display.console.print("database is up to date")
