"""Runs and their results: `runs list|show`, `outbox`, `convert`, `report`."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import typer

from omnicascade.cli import display
from omnicascade.cli.common import JSON, UserError, app, db_url, reading, runs_app, settings


@runs_app.command("list")
def runs_list(as_json: bool = JSON) -> None:
    """Every run with status, enrolled, converted and conversion rate."""
    from omnicascade.reports.runs import runs_list as rl
    with reading() as s:
        rows = rl(session=s)
    display.print_json(rows) if as_json else display.console.print(display.runs_table(rows))


@runs_app.command("show")
def runs_show(run_id: str, as_json: bool = JSON,
              watch: bool = typer.Option(False, "--watch", help="Refresh the live funnel "
                                         "until the run completes (Ctrl-C stops)."),
              interval: float = typer.Option(2.0, help="Seconds between --watch refreshes.",
                                             min=0.1)) -> None:
    """A run's funnel per step and channel (live with --watch)."""
    from omnicascade.reports.runs import run_show
    if watch:
        if as_json:
            raise UserError("--watch redraws a table; use --json without --watch")
        from omnicascade.cli.live import watch_run
        s_ = settings()
        db_url(s_)
        watch_run(run_id, lambda: reading(s_), display.console, interval)
        return
    with reading() as s:
        data = run_show(run_id, session=s)
    if as_json:
        display.print_json(data)
    else:
        display.console.print(display.funnel_table(data))
        display.console.print(display.run_summary(data))


@app.command()
def outbox(customer: str | None = typer.Option(None, help="Only this customer."),
           run: str | None = typer.Option(None, help="Only this run."),
           limit: int = typer.Option(1000, help="At most this many messages."),
           as_json: bool = JSON) -> None:
    """What the outbox provider "sent" (rendered and stored, not delivered)."""
    from omnicascade.reports.customers import outbox_list
    with reading() as s:
        rows = outbox_list(session=s, customer_id=customer, run_id=run, limit=limit)
    display.print_json(rows) if as_json else display.console.print(display.outbox_table(rows))


@app.command()
def convert(customer: str | None = typer.Option(None, help="Customer id."),
            type: str = typer.Option(..., "--type", help="Conversion type, e.g. order_placed."),
            promo_code: str | None = typer.Option(None, help="Find the customer by code."),
            event_id: str | None = typer.Option(None, help="Idempotency key (default: new)."),
            amount: float | None = typer.Option(None), currency: str | None = None,
            as_json: bool = JSON) -> None:
    """Record a conversion by hand and stop that customer's cascades."""
    from pydantic import ValidationError

    from omnicascade.cascade.conversions import ConversionIn, convert_by_hand
    try:
        data = ConversionIn(event_id=event_id or f"manual-{uuid.uuid4().hex}", type=type,
                            customer_id=customer, promo_code=promo_code, amount=amount,
                            currency=currency)
    except ValidationError as exc:
        raise UserError("; ".join(e["msg"].removeprefix("Value error, ")
                                  for e in exc.errors())) from None
    s = settings()
    db_url(s)
    body, signalled = asyncio.run(convert_by_hand(data, s))
    if as_json:
        display.print_json(body)
    else:
        display.console.print(f"recorded {type} for {body['customer_id']}: stopped "
                              f"{body['stopped']} active cascade(s)"
                              + ("" if signalled else " (Temporal unreachable: the send-time "
                                 "guard stops them)"))


@app.command()
def report(run_id: str,
           html: Path | None = typer.Option(None, help="Write a self-contained HTML "
                                               "report (charts included) to this file."),
           csv: Path | None = typer.Option(None, "--csv", help="Write customers.csv, "
                                              "funnel.csv and variants.csv into this folder."),
           as_json: bool = JSON) -> None:
    """Funnel, attribution, A/B significance, lift over holdout and cost for a run."""
    from omnicascade.reports.build import compose, load
    from omnicascade.reports.runs import status_of
    s_ = settings()
    with reading(s_) as s:
        data = load(run_id, session=s, settings=s_)
        rep = compose(data, status_of(run_id, session=s))
    if html:
        from omnicascade.reports.html import write_html
        write_html(rep, html)
        display.err_console.print(f"wrote {html}")
    if csv:
        from omnicascade.reports.export import write_csv
        for path in write_csv(rep, data, csv):
            display.err_console.print(f"wrote {path}")
    if as_json:
        display.print_json(rep)
    elif not html and not csv:
        from omnicascade.reports.terminal import report_view
        for item in report_view(rep):
            display.console.print(item)
