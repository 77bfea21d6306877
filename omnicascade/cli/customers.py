"""`omnicascade customers …`: import, a customer's timeline; erase, readmit and the
pseudonym Temporal knows a customer by (cli/erasure.py)."""

from __future__ import annotations

from pathlib import Path

from omnicascade.cli import display
from omnicascade.cli.common import (
    CURSOR,
    JSON,
    LIMIT,
    customers_app,
    more,
    reading,
    session,
    settings,
)


@customers_app.command("import")
def customers_import(file: Path, as_json: bool = JSON) -> None:
    """Upsert customers from CSV or JSONL; all rows or none."""
    from omnicascade.cascade.erasure import refused
    from omnicascade.customers.importer import parse_customer_file
    from omnicascade.customers.model import upsert_customers
    rows = parse_customer_file(file)
    conf = settings()
    with session(conf) as s:
        # an erased person (by id or any address) is not created again: `customers readmit`
        out = refused(conf, rows, session=s)
        kept = [c for c in rows if c.id not in out]
        created, updated = upsert_customers(kept, session=s)
    erased = len(rows) - len(kept)
    if as_json:
        display.print_json({"imported": len(kept), "created": created, "updated": updated,
                            "skipped": {"erased": erased}})
    else:
        display.console.print(f"imported {len(kept)} customers ({created} new, {updated} "
                              f"updated)" + (f"; skipped: erased {erased}" if erased else ""))


@customers_app.command("show")
def customers_show(customer_id: str, as_json: bool = JSON, limit: int | None = LIMIT,
                   cursor: str | None = CURSOR) -> None:
    """A customer's timeline: enrollments, messages (a page at a time), conversions."""
    from omnicascade.reports.customers import customer_show_page
    from omnicascade.reports.timeline import customer_page
    # --json is `customers show`; people see the console's page, which is that plus the
    # channels and the timeline (engagement and suppressions too)
    with reading() as s:
        if as_json:
            data, after = customer_show_page(customer_id, session=s, limit=limit,
                                             cursor=cursor)
        else:
            data = customer_page(customer_id, session=s, limit=limit, cursor=cursor)
            after = data["next_cursor"]
    if as_json:
        display.print_json(data)
    else:
        from omnicascade.cli.timeline import customer_view
        for item in customer_view(data):
            display.console.print(item)
    more(after)
