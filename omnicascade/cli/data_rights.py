"""`omnicascade customers export` (GDPR Art. 15/20, the same document as
`GET /v1/customers/{id}/export`) and `omnicascade db prune` (retention, the pass the worker
runs every hour: cascade/retention.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from omnicascade.cli import display
from omnicascade.cli.common import JSON, UserError, customers_app, db_app, db_url, reading, settings

OUT = typer.Option(None, "--out", help="Write the JSON to this file (created 0600: it holds "
                                       "personal data) instead of printing it.")
DRY_RUN = typer.Option(False, "--dry-run", help="Count what would be removed; change nothing.")


@customers_app.command("export")
def customers_export(customer_id: str, out: Path | None = OUT) -> None:
    """Everything stored about a customer, as one JSON document (GDPR Art. 15/20).

    Profile, consents and their history, suppressions, enrollments, every message with its
    rendered body, provider feedback, events, conversions, promo codes, Telegram links.
    The shape: README, "Data protection → Export"."""
    from omnicascade.reports.export_person import person_export
    with reading() as s:
        data = person_export(customer_id, session=s)  # NotFound: "error: …", exit 1
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if out is None:
        print(text, end="")
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    display.err_console.print(f"exported {customer_id!r} to {out}", highlight=False)


@db_app.command("prune")
def db_prune(dry_run: bool = DRY_RUN, as_json: bool = JSON) -> None:
    """Drop what OMNICASCADE_RETENTION no longer keeps (what the worker does every hour).

    Message bodies and subjects, raw event and provider payloads past their window; the
    rows, counts and money stay. Prints what it removed (or would) per table."""
    from omnicascade.cascade.retention import prune_pass
    s = settings()
    db_url(s)
    result = prune_pass(s, dry_run=dry_run)
    if as_json:
        display.print_json(result.body())
        return
    if not result.windows:
        display.console.print("retention is not configured (OMNICASCADE_RETENTION): "
                              "everything is kept, nothing to prune", highlight=False)
        return
    verb = "would remove" if dry_run else "removed"
    kept = ", ".join(f"{k} {v}" for k, v in result.body()["windows"].items())
    display.console.print(f"retention: {kept}", highlight=False)
    for table, n in result.rows.items():
        display.console.print(f"  {table}: {verb} the content of {n} row(s)", highlight=False)
    if result.busy:
        display.console.print("another worker is pruning now: this pass stopped early",
                              highlight=False)
