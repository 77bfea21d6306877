"""`omnicascade customers erase | readmit | pseudonym`: a person's data rights from the
command line (the same functions as `DELETE /v1/customers/{id}`, cascade/erase.py)."""

from __future__ import annotations

import asyncio
import sys

import typer

from omnicascade.cli import display
from omnicascade.cli.common import JSON, UserError, customers_app, db_url, session, settings

YES = typer.Option(False, "--yes", help="Erase without asking (scripts; there is no undo).")


@customers_app.command("erase")
def customers_erase(customer_id: str, yes: bool = YES, as_json: bool = JSON) -> None:
    """Erase a customer and everything stored about them (GDPR Art. 17).

    Their cascades end, their personal data leaves every table and Temporal, and their id
    and addresses are kept out of later imports and events."""
    from omnicascade.cascade.erase import erase_customer
    from omnicascade.cli.later import TemporalLater
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"not erasing {customer_id!r}: nobody to ask (stdin is not a "
                            f"terminal); pass --yes to erase without asking")
        if not typer.confirm(f"Erase customer {customer_id!r} and everything stored about "
                             f"them? There is no undo"):
            raise UserError("nothing erased")
    s = settings()
    db_url(s)
    temporal = TemporalLater(s)  # connected only once the database half is committed
    outcome = asyncio.run(erase_customer(temporal, s, customer_id, "cli"))
    if as_json:
        display.print_json(outcome.body())
    elif not outcome.erased:
        display.console.print(f"nothing to erase: no customer {customer_id!r} is stored "
                              f"(unknown, or erased already)", highlight=False)
    else:
        rows = ", ".join(f"{table} {n}" for table, n in outcome.rows.items() if n)
        display.console.print(f"erased {customer_id!r}: {outcome.cascades_ended} cascade(s) "
                              f"ended, {outcome.workflows_deleted} deleted from Temporal; "
                              f"rows: {rows}", highlight=False)
    if outcome.workflows_pending:
        display.err_console.print(
            f"warning: {outcome.workflows_pending} cascade(s) not deleted from Temporal yet — "
            f"{temporal.why}. They are erased in the database (no message goes out); the "
            f"worker deletes them from Temporal once it is reachable.", highlight=False)


@customers_app.command("readmit")
def customers_readmit(id_or_address: str, as_json: bool = JSON) -> None:
    """Let an erased person back in, only after they consented again.

    A customer id, e-mail, phone number, Telegram chat id or push token stops being
    refused."""
    from omnicascade.cascade.erasure import readmit_any
    s = settings()
    with session(s) as db:
        removed = readmit_any(s, id_or_address, session=db)
    if as_json:
        display.print_json({"readmitted": removed > 0, "removed": removed})
    elif removed:
        display.console.print(f"readmitted: {id_or_address!r} may be imported again",
                              highlight=False)
    else:
        raise UserError(f"{id_or_address!r} is not suppressed as erased: nothing to readmit")


@customers_app.command("pseudonym")
def customers_pseudonym(customer_id: str) -> None:
    """Print the pseudonym Temporal knows a customer's cascades by.

    The OmnicascadeCustomer search attribute's value, e.g. for
    `temporal workflow list -q 'OmnicascadeCustomer="…"'`."""
    from omnicascade.customers.pseudonym import pseudonym
    print(pseudonym(settings(), customer_id))
