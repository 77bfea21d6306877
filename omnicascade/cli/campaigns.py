"""`omnicascade campaign …`: validate, preview and launch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omnicascade.cli import display

if TYPE_CHECKING:  # imported lazily at run time (see common.py)
    from omnicascade.campaign.load import LoadedCampaign

from omnicascade.cli.common import JSON, UserError, campaign_app, db_url, reading, settings


def _load(file: Path) -> LoadedCampaign:
    from omnicascade.campaign.load import load_campaign
    return load_campaign(file)


@campaign_app.command("validate")
def campaign_validate(file: Path,
                      audience: Path | None = typer.Option(
                          None, help="CSV or JSONL customer file: check customer.<attr> "
                          "against its columns too."),
                      as_json: bool = JSON) -> None:
    """Check a campaign YAML and its templates, customer.<attr> against the imported
    customers and --audience FILE, event.<field> against trigger.example; writes nothing."""
    from omnicascade.campaign.load import load_campaign
    from omnicascade.cli.known import known_attributes
    known, notes = known_attributes(audience)
    loaded = load_campaign(file, attributes=known)
    notes = loaded.notes + notes
    if as_json:
        display.print_json({"campaign": loaded.spec.campaign, "valid": True,
                            "steps": len(loaded.spec.steps), "notes": notes})
        return
    display.console.print(f"[green]✓[/] {file}: campaign '{loaded.spec.campaign}' is valid "
                          f"({len(loaded.spec.steps)} steps, "
                          f"{len(loaded.spec.after_conversion)} after conversion)")
    for note in notes:
        display.console.print(f"  note: {note}")


@campaign_app.command("launch")
def campaign_launch(file: Path,
                    audience: Path | None = typer.Option(None, help="CSV or JSONL audience."),
                    time_scale: float = typer.Option(
                        1.0, help="Rehearse: run the campaign's clock this many times faster "
                        "(waits, quiet hours, caps, reports); sends go to the outbox.", min=1.0),
                    live: bool = typer.Option(False, "--live", help="A rehearsal sends "
                                              "through the configured providers."),
                    in_flight: str = typer.Option(
                        "keep", "--in-flight", help="Customers in flight on earlier versions: "
                        "keep (they finish as they started) or stop (they end now)."),
                    as_json: bool = JSON) -> None:
    """Launch a run: enroll the audience, or listen for the trigger event. Prints the run id.
    A changed campaign becomes a new version; an unchanged one creates nothing."""
    from omnicascade.cascade.launch import launch, read_audience
    if in_flight not in ("keep", "stop"):
        raise UserError(f"--in-flight is keep or stop, not {in_flight!r}")
    loaded = _load(file)
    if audience is None and loaded.spec.trigger is None:
        raise UserError(f"{file}: this campaign has no trigger, so it needs --audience FILE")
    people = read_audience(audience) if audience else []
    s = settings()
    db_url(s)
    if as_json or len(people) < 200:
        result = asyncio.run(launch(loaded, s, audience=people, time_scale=time_scale,
                                    live=live, in_flight=in_flight))  # type: ignore[arg-type]
    else:
        from rich.progress import Progress
        with Progress(console=display.err_console) as bar:
            task = bar.add_task("enrolling", total=None)
            result = asyncio.run(launch(
                loaded, s, audience=people, time_scale=time_scale, live=live,
                in_flight=in_flight,  # type: ignore[arg-type]
                on_start=lambda n: bar.update(task, total=n),
                on_progress=lambda n: bar.advance(task, n)))
    if as_json:
        display.print_json(result.json())
        return
    if result.unchanged:
        display.console.print(f"unchanged: {result.campaign} version {result.version} is "
                              f"already live as run {result.run_id}; nothing was created")
        print(result.run_id)
        return
    listening = f"; listening for '{loaded.spec.trigger.event}' events" if loaded.spec.trigger \
        else ""
    skipped = f", {result.skipped} skipped (already in a live cascade, or reentry)" \
        if result.skipped else ""
    display.console.print(f"launched {result.campaign} version {result.version}: "
                          f"{result.enrolled} enrolled, {result.excluded} excluded (already "
                          f"converted){skipped}{listening}")
    if time_scale != 1.0:
        where = "the configured providers (--live)" if live else "the outbox only"
        display.console.print(f"  rehearsal ×{time_scale:g}: the campaign's clock runs "
                              f"{time_scale:g}× faster (waits, quiet hours, caps, reports); "
                              f"messages go to {where}")
    if result.superseded:
        fate = (f"{result.stopped} cascade(s) in flight stopped" if in_flight == "stop"
                else "customers in flight finish on it")
        display.console.print(f"  replaces run {result.superseded} (now superseded); {fate}")
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
    from omnicascade.cascade.audience import preview_audience
    from omnicascade.cascade.preview import preview
    loaded = _load(file)
    if (customer is None) == (audience is None):
        raise UserError("give exactly one of --customer ID or --audience FILE")
    try:
        data = json.loads(event) if event is not None else None  # None: trigger.example
    except json.JSONDecodeError as exc:
        raise UserError(f"--event is not valid JSON: {exc}") from None
    if event is not None and not isinstance(data, dict):
        raise UserError('--event is the trigger event\'s data: a JSON object such as '
                        '\'{"currency": "EUR", "products": [{"name": "Tent", "price": 240}]}\'')
    s = settings()
    if audience is not None:
        from omnicascade.cli.known import read_audience
        people = read_audience(audience)
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


@campaign_app.command("plan")
def campaign_plan(file: Path,
                  in_flight: str = typer.Option("keep", "--in-flight",
                                                help="What launching would do to customers "
                                                     "in flight: keep or stop."),
                  as_json: bool = JSON) -> None:
    """Show what launching FILE would change against the live version; writes nothing."""
    from omnicascade.cascade.changes import plan_launch
    from omnicascade.cli.plan_view import plan_view
    if in_flight not in ("keep", "stop"):
        raise UserError(f"--in-flight is keep or stop, not {in_flight!r}")
    loaded = _load(file)
    with reading() as db:
        plan = plan_launch(loaded, session=db, in_flight=in_flight)  # type: ignore[arg-type]
    if as_json:
        display.print_json(plan)
    else:
        display.console.print(plan_view(plan))


@campaign_app.command("list")
def campaign_list(as_json: bool = JSON) -> None:
    """One row per campaign: its live (or latest) version and totals over every version."""
    from omnicascade.cli.plan_view import campaigns_table
    from omnicascade.reports.campaigns import campaigns_list
    with reading() as db:
        rows = campaigns_list(session=db)
    if as_json:
        display.print_json(rows)
    elif not rows:
        display.console.print("no campaigns launched yet")
    else:
        display.console.print(campaigns_table(rows))
