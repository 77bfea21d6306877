"""`omnicascade customers …`: import, and a customer's timeline."""

from __future__ import annotations

from pathlib import Path

from omnicascade.cli import display
from omnicascade.cli.common import JSON, customers_app, reading, session


@customers_app.command("import")
def customers_import(file: Path, as_json: bool = JSON) -> None:
    """Upsert customers from CSV or JSONL; all rows or none."""
    from omnicascade.customers.importer import parse_customer_file
    from omnicascade.customers.model import upsert_customers
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
    from omnicascade.reports.customers import customer_show
    with reading() as s:
        data = customer_show(customer_id, session=s)
    if as_json:
        display.print_json(data)
    else:
        from omnicascade.cli.timeline import customer_view
        for item in customer_view(data):
            display.console.print(item)
