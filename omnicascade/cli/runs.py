"""Runs and their results: `runs list|show`, `outbox`, `convert`, `report`."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import typer

from omnicascade.cli import display
from omnicascade.cli.common import (
    CURSOR,
    JSON,
    LIMIT,
    UserError,
    app,
    db_url,
    more,
    reading,
    runs_app,
    settings,
)


@runs_app.command("list")
def runs_list(as_json: bool = JSON, limit: int | None = LIMIT,
              cursor: str | None = CURSOR) -> None:
    """Runs, newest first, with status, enrolled, converted, conversion rate and unmatched
    conversions."""
    from omnicascade.reports.run_views import runs_page
    with reading() as s:
        page = runs_page(session=s, limit=limit, cursor=cursor)
    rows = page.rows
    display.print_json(rows) if as_json else display.console.print(display.runs_table(rows))
    more(page.next_cursor)


@runs_app.command("show")
def runs_show(run_id: str, as_json: bool = JSON,
              watch: bool = typer.Option(False, "--watch", help="Refresh the live funnel "
                                         "until the run completes (Ctrl-C stops)."),
              interval: float = typer.Option(2.0, help="Seconds between --watch refreshes.",
                                             min=0.1)) -> None:
    """A run's funnel per step and channel (live with --watch)."""
    from omnicascade.reports.run_views import run_show
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
        from omnicascade.reports.winner import winner_line
        line = winner_line(data.get("experiment"))
        if line:
            display.console.print(line, highlight=False)


def _control(run_id: str, action: str, drain: bool, as_json: bool) -> None:
    """Commit the change, then tell the run's cascades through Temporal (if reachable: the
    change stands either way, and every send reads the run's status first)."""
    from omnicascade.cascade.control import Action, control_run
    from omnicascade.cli.later import TemporalLater
    s = settings()
    db_url(s)
    act = Action.DRAIN if action == "stop" and drain else Action(action)
    temporal = TemporalLater(s)  # connected only once the change is committed
    change = asyncio.run(control_run(run_id, act, s, temporal))
    if as_json:
        display.print_json(change.body())
    else:
        display.console.print(display.control_line(change), highlight=False)
    if not change.temporal:
        display.err_console.print(
            f"warning: {len(change.cascades)} cascade(s) not told at once — {temporal.why}. "
            f"The run is {change.status} in the database all the same, and every send checks "
            f"that first" + (": held sends go out at their next check (at most "
                             f"{s.pause_recheck_max_s / 3600:g} h away); run this again once "
                             f"Temporal is back to send them now"
                             if act == Action.RESUME else "") + ".", highlight=False)


@runs_app.command("stop")
def runs_stop(run_id: str,
              drain: bool = typer.Option(False, "--drain", help="Enroll nobody new but let "
                                         "the cascades in flight finish (status draining, "
                                         "then stopped)."),
              as_json: bool = JSON) -> None:
    """Stop a run now: nothing more is enrolled or sent, every active cascade ends stopped."""
    _control(run_id, "stop", drain, as_json)


@runs_app.command("pause")
def runs_pause(run_id: str, as_json: bool = JSON) -> None:
    """Hold every send of a run (waits keep running, conversions still stop cascades)."""
    _control(run_id, "pause", False, as_json)


@runs_app.command("resume")
def runs_resume(run_id: str, as_json: bool = JSON) -> None:
    """Resume a paused run: held sends go out now, each checked again first."""
    _control(run_id, "resume", False, as_json)


@app.command()
def outbox(customer: str | None = typer.Option(None, help="Only this customer."),
           run: str | None = typer.Option(None, help="Only this run."),
           limit: int | None = LIMIT, cursor: str | None = CURSOR,
           as_json: bool = JSON) -> None:
    """What the outbox provider "sent" (rendered and stored, not delivered), oldest first."""
    from omnicascade.reports.outbox import deferred_note, outbox_page
    with reading() as s:
        page = outbox_page(session=s, customer_id=customer, run_id=run, limit=limit,
                           cursor=cursor)
        # nothing sent yet: say what is waiting rather than an empty table alone
        note = None if page.rows or as_json or cursor else \
            deferred_note(session=s, customer_id=customer, run_id=run)
    rows = page.rows
    display.print_json(rows) if as_json else display.console.print(display.outbox_table(rows))
    if note:
        display.console.print(note, highlight=False)
    more(page.next_cursor)


@app.command()
def convert(customer: str | None = typer.Option(None, help="Customer id."),
            type: str = typer.Option(..., "--type", help="Conversion type, e.g. order_placed."),
            promo_code: str | None = typer.Option(None, help="Find the customer by code."),
            event_id: str | None = typer.Option(None, help="Idempotency key (default: new)."),
            amount: str | None = typer.Option(None, help="The order's amount, e.g. 19.99."),
            currency: str | None = None,
            as_json: bool = JSON) -> None:
    """Record a conversion by hand and stop that customer's cascades."""
    from pydantic import ValidationError

    from omnicascade.cascade.conversions import ConversionIn, convert_by_hand
    try:
        data = ConversionIn.model_validate({  # a text amount: parsed exactly, as in the API
            "event_id": event_id or f"manual-{uuid.uuid4().hex}", "type": type,
            "customer_id": customer, "promo_code": promo_code, "amount": amount,
            "currency": currency})
    except ValidationError as exc:
        raise UserError("; ".join(e["msg"].removeprefix("Value error, ")
                                  for e in exc.errors())) from None
    s = settings()
    db_url(s)
    body, signalled = asyncio.run(convert_by_hand(data, s))
    if not body.get("matched", True):  # stored all the same (the shop may import them later)
        display.err_console.print(f"warning: no customer {body['customer_id']}: stored as an "
                                  f"unmatched conversion (counted as unmatched in `runs "
                                  f"list` and reports)", highlight=False, soft_wrap=True)
    if as_json:
        display.print_json(body)
    elif not body.get("matched", True):
        display.console.print(f"recorded {type} for {body['customer_id']}: no cascade "
                              f"stopped")
    else:
        display.console.print(f"recorded {type} for {body['customer_id']}: stopped "
                              f"{body['stopped']} active cascade(s)"
                              + ("" if signalled else " (Temporal unreachable: the send-time "
                                 "guard stops them)"))


def _global(run_id: str | None, since: str, as_json: bool, files: object,
            whole: bool) -> None:
    if run_id is not None or files or not whole:
        raise UserError("give a RUN_ID, or --global (without --html/--csv)")
    from omnicascade.campaign.durations import parse_duration
    from omnicascade.reports.global_control import global_report
    try:
        period = parse_duration(since)
    except ValueError as exc:
        raise UserError(f"--since {since!r}: {exc}") from None
    if period <= 0:
        raise UserError(f"--since {since!r}: give a period such as 30d")
    s_ = settings()
    with reading(s_) as s:
        rep = global_report(session=s, period_s=period, cost_currency=s_.cost_currency)
    if as_json:
        display.print_json(rep)
        return
    for name in ("messaged", "global_control"):
        g = rep[name]
        rate = "–" if g["rate"] is None else f"{g['rate']:.2%}"
        display.console.print(f"{name}: {g['customers']} customers, {g['converted']} converted "
                              f"({rate}), revenue per customer {g['revenue_per_customer']}",
                              highlight=False)
    lift = rep["lift"]["conversion_rate"]
    if lift["diff"] is not None:
        display.console.print(f"lift: {lift['diff'] * 100:+.2f} pts (interval "
                              f"{lift['ci_low'] * 100:+.2f} to {lift['ci_high'] * 100:+.2f})",
                              highlight=False)
    display.console.print(f"messaging cost: {rep['messaging_cost']} {rep['currency']}",
                          highlight=False)
    for note in rep["notes"]:
        display.console.print(f"note: {note}", highlight=False)


@app.command()
def report(run_id: str | None = typer.Argument(None, help="The run (omit with --global)."),
           whole: bool = typer.Option(False, "--global", help="Messaged vs the global "
                                      "control group, across every campaign."),
           since: str = typer.Option("30d", help="With --global: the period, e.g. 30d."),
           html: Path | None = typer.Option(None, help="Write a self-contained HTML "
                                               "report (charts included) to this file."),
           csv: Path | None = typer.Option(None, "--csv", help="Write customers.csv, "
                                              "funnel.csv and variants.csv into this folder."),
           as_json: bool = JSON) -> None:
    """Funnel, attribution, A/B significance, lift over holdout and cost for a run."""
    from omnicascade.reports.build import compose, load
    from omnicascade.reports.run_views import status_of
    from omnicascade.reports.winner import with_experiment
    s_ = settings()
    if whole or run_id is None:
        return _global(run_id, since, as_json, html or csv, whole)
    with reading(s_) as s:
        data = load(run_id, session=s, settings=s_)
        rep = with_experiment(compose(data, status_of(run_id, session=s)), run_id, session=s)
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
