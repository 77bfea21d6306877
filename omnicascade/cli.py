"""The `omnicascade` command: each command a few lines over library calls."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import typer

from omnicascade import display
from omnicascade.config import Settings, load_settings
from omnicascade.errors import UserFacingError

app = typer.Typer(help="omnicascade — durable campaign cascades that stop the moment a "
                       "customer converts.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
campaign_app = typer.Typer(help="Validate, preview and launch campaigns.", no_args_is_help=True)
customers_app = typer.Typer(help="Import customers and show a customer's timeline.",
                            no_args_is_help=True)
runs_app = typer.Typer(help="List runs and show a run's funnel.", no_args_is_help=True)
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


def session(s: Settings | None = None):  # noqa: ANN201
    from omnicascade.db.session import session_scope
    return session_scope(db_url(s))


def reading(s: Settings | None = None):  # noqa: ANN201
    """A read-only session: listings and reports never block the senders."""
    from omnicascade.db.session import read_scope
    return read_scope(db_url(s))


# ---- embedded stack & deployment pieces ------------------------------------------------

@app.command()
def server(host: str | None = typer.Option(None, help="API host (default 127.0.0.1)."),
           port: int | None = typer.Option(None, help="API port (default 8787).")) -> None:
    """Run everything on this machine: Temporal dev server + worker + HTTP API."""
    from omnicascade.deploy import configure_logging
    from omnicascade.server import serve

    def announce(stack) -> None:  # noqa: ANN001
        s = stack.settings
        display.console.print(f"[bold green]omnicascade is running[/]\n"
                              f"  HTTP API      {stack.api_url}  (OpenAPI: {stack.api_url}/docs)\n"
                              f"  Temporal UI   {stack.ui_url}\n"
                              f"  Temporal      {s.resolved_temporal_address()}\n"
                              f"  state         {s.home_dir}\n"
                              f"  webhook secret "
                              f"{'from environment' if s.webhook_secret else s.secret_file}\n"
                              f"Press Ctrl-C to stop.")
    configure_logging()
    asyncio.run(serve(settings(), host=host, port=port, announce=announce))
    display.console.print("stopped.")


@app.command()
def demo(keep: bool = typer.Option(False, help="Keep the demo's state directory.")) -> None:
    """End-to-end demo on the embedded stack: import, launch, convert, show the funnel."""
    from omnicascade.demo import run_demo
    raise typer.Exit(asyncio.run(run_demo(keep=keep)))


@app.command()
def worker() -> None:
    """Run a worker (scaled deployment: any number, against OMNICASCADE_TEMPORAL_ADDRESS)."""
    from omnicascade.deploy import configure_logging, run_worker_process
    db_url()
    configure_logging()
    asyncio.run(run_worker_process(settings()))


@app.command()
def api(host: str | None = typer.Option(None), port: int | None = typer.Option(None)) -> None:
    """Run the HTTP API alone (scaled deployment)."""
    from omnicascade.deploy import configure_logging, run_api_process
    db_url()
    configure_logging()
    run_api_process(settings(), host=host, port=port)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (idempotent)."""
    from omnicascade.db.migrate import upgrade
    s = settings()
    upgrade(s.db_url)
    display.console.print("database is up to date")


# ---- campaigns --------------------------------------------------------------------------

def _load(file: Path):  # noqa: ANN202
    from omnicascade.spec import load_campaign
    return load_campaign(file)


@campaign_app.command("validate")
def campaign_validate(file: Path, as_json: bool = JSON) -> None:
    """Check a campaign YAML and its templates; writes nothing."""
    loaded = _load(file)
    if as_json:
        display.print_json({"campaign": loaded.spec.campaign, "valid": True,
                            "steps": len(loaded.spec.steps), "notes": loaded.notes})
        return
    display.console.print(f"[green]✓[/] {file}: campaign '{loaded.spec.campaign}' is valid "
                          f"({len(loaded.spec.steps)} steps, "
                          f"{len(loaded.spec.after_conversion)} after conversion)")
    for note in loaded.notes:
        display.console.print(f"  note: {note}")


@campaign_app.command("launch")
def campaign_launch(file: Path,
                    audience: Path | None = typer.Option(None, help="CSV or JSONL audience."),
                    time_scale: float = typer.Option(1.0, help="Compress every wait by this "
                                                     "factor (rehearsals/demos).", min=1.0),
                    as_json: bool = JSON) -> None:
    """Launch a run: enroll the audience, or listen for the trigger event. Prints the run id."""
    from omnicascade.launch import launch, read_audience
    loaded = _load(file)
    if audience is None and loaded.spec.trigger is None:
        raise UserError(f"{file}: this campaign has no trigger, so it needs --audience FILE")
    people = read_audience(audience) if audience else []
    s = settings()
    db_url(s)
    if as_json or len(people) < 200:
        result = asyncio.run(launch(loaded, s, audience=people, time_scale=time_scale))
    else:
        from rich.progress import Progress
        with Progress(console=display.err_console) as bar:
            task = bar.add_task("enrolling", total=None)
            result = asyncio.run(launch(
                loaded, s, audience=people, time_scale=time_scale,
                on_start=lambda n: bar.update(task, total=n),
                on_progress=lambda n: bar.advance(task, n)))
    if as_json:
        display.print_json(result.json())
        return
    listening = f"; listening for '{loaded.spec.trigger.event}' events" if loaded.spec.trigger \
        else ""
    display.console.print(f"launched {result.campaign}: {result.enrolled} enrolled, "
                          f"{result.excluded} excluded (already converted){listening}")
    for note in result.notes:
        display.console.print(f"  note: {note}")
    print(result.run_id)


@campaign_app.command("preview")
def campaign_preview(file: Path,
                     customer: str | None = typer.Option(None, help="Customer id."),
                     audience: Path | None = typer.Option(None, help="Summarise an audience "
                                                             "file instead (CSV/JSONL)."),
                     event: str | None = typer.Option(None, help="Trigger data as JSON."),
                     as_json: bool = JSON) -> None:
    """Render every message for a customer, or summarise an audience; sends and writes
    nothing."""
    from omnicascade.preview import preview, preview_audience
    loaded = _load(file)
    if (customer is None) == (audience is None):
        raise UserError("give exactly one of --customer ID or --audience FILE")
    try:
        data = json.loads(event) if event else None
    except json.JSONDecodeError as exc:
        raise UserError(f"--event is not valid JSON: {exc}") from None
    s = settings()
    if audience is not None:
        from omnicascade.customers import parse_customer_file
        people = parse_customer_file(audience)
        with reading(s) as db:
            summary = preview_audience(loaded, people, session=db, settings=s)
        display.print_json(summary) if as_json else display.audience_summary(summary)
        return
    assert customer is not None  # exactly one of --customer / --audience (checked above)
    with reading(s) as db:
        items = preview(loaded, customer, session=db, settings=s, event=data)
    if as_json:
        display.print_json(items)
    else:
        display.preview_messages(items)
    if any("error" in m for m in items):
        raise typer.Exit(1)


# ---- customers --------------------------------------------------------------------------

@customers_app.command("import")
def customers_import(file: Path, as_json: bool = JSON) -> None:
    """Upsert customers from CSV or JSONL; all rows or none."""
    from omnicascade.customers import parse_customer_file, upsert_customers
    rows = parse_customer_file(file)
    with session() as s:
        created, updated = upsert_customers(rows, session=s)
    if as_json:
        display.print_json({"imported": len(rows), "created": created, "updated": updated})
    else:
        display.console.print(f"imported {len(rows)} customers ({created} new, {updated} updated)")


@customers_app.command("show")
def customers_show(customer_id: str, as_json: bool = JSON) -> None:
    """A customer's timeline: enrollments, messages, conversions."""
    from omnicascade.reports.views import customer_show
    with reading() as s:
        data = customer_show(customer_id, session=s)
    if as_json:
        display.print_json(data)
    else:
        for item in display.customer_view(data):
            display.console.print(item)


# ---- runs, outbox, conversions ------------------------------------------------------------

@runs_app.command("list")
def runs_list(as_json: bool = JSON) -> None:
    """Every run with status, enrolled, converted and conversion rate."""
    from omnicascade.reports.views import runs_list as rl
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
    from omnicascade.reports.views import run_show
    if watch:
        if as_json:
            raise UserError("--watch redraws a table; use --json without --watch")
        from omnicascade.reports.live import watch_run
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
    from omnicascade.reports.views import outbox_list
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

    from omnicascade.conversions import ConversionIn
    from omnicascade.manual import convert_by_hand
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
    from omnicascade.reports.build import compose, load, status_of
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


def main() -> None:
    from omnicascade.errors import UserFacingError
    from omnicascade.spec import SpecError
    try:
        app()
    except SpecError as exc:
        display.err_console.print(f"[red]invalid campaign[/] ({len(exc.problems)} problem"
                                  f"{'s' if len(exc.problems) != 1 else ''}):", highlight=False)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    except (UserFacingError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
