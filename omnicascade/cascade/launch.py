"""`campaign launch`: validate, write the run and every enrollment in one transaction, then
start the cascades. If the launcher dies after the commit, the worker's reconciler starts
whatever is still pending — enrollment completes either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select

from omnicascade.campaign.load import LoadedCampaign
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.plan import cascade_input
from omnicascade.cascade.temporal import connect, start_cascades
from omnicascade.config import Settings
from omnicascade.customers.importer import parse_customer_file
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Customer, Enrollment, Run
from omnicascade.db.query import chunks, scalars_in
from omnicascade.db.session import session_scope
from omnicascade.errors import UserFacingError
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import CascadeInput


class AudienceError(UserFacingError, ValueError):
    pass


@dataclass
class LaunchResult:
    run_id: str
    campaign: str
    enrolled: int
    excluded: int
    notes: list[str]

    def json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "campaign": self.campaign, "enrolled": self.enrolled,
                "excluded": self.excluded}


def read_audience(path: Path) -> list[CustomerIn]:
    """An audience file is a customer file: rows with only an id refer to known customers,
    rows with more columns are upserted like `customers import`."""
    return parse_customer_file(path)


def _write(loaded: LoadedCampaign, audience: list[CustomerIn], settings: Settings,
           time_scale: float) -> tuple[str, list[str], int]:
    with session_scope(settings.db_url) as session:
        with_data = [c for c in audience if len(c.model_fields_set - {"id", "attributes"})
                     or c.attributes]
        upsert_customers(with_data, session=session)
        ids = [c.id for c in audience]
        known = set(scalars_in(session, lambda chunk: select(Customer.id).where(
            Customer.id.in_(chunk)), ids))
        missing = [i for i in ids if i not in known]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:10])
            raise AudienceError(f"{len(missing)} audience customer(s) are unknown: {shown}"
                                f"{' …' if len(missing) > 10 else ''}; import them first or "
                                f"add their columns to the audience file")
        run = create_run(loaded, session=session, time_scale=time_scale,
                         audience_total=len(ids))
        rows = enroll_customers(run, ids, session=session, settings=settings)
        return run.id, [r.id for r in rows if r.status == EnrollmentStatus.PENDING], \
            sum(1 for r in rows if r.status == EnrollmentStatus.EXCLUDED)


async def launch(loaded: LoadedCampaign, settings: Settings, *, audience: list[CustomerIn],
                 time_scale: float = 1.0,
                 on_start: Callable[[int], None] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> LaunchResult:
    client = await connect(settings)  # fail before writing anything if Temporal is down
    run_id, pending, excluded = await asyncio.to_thread(_write, loaded, audience, settings,
                                                        time_scale)
    if on_start:
        on_start(len(pending))

    def load(chunk: list[str]) -> list[CascadeInput]:
        with session_scope(settings.db_url) as session:
            run = cast(Run, session.get(Run, run_id))  # written by _write above; never deleted
            return [cascade_input(run, e, settings) for e in session.scalars(
                select(Enrollment).where(Enrollment.id.in_(chunk)))]

    # Streamed in chunks so a 100,000-customer launch never holds every input in memory.
    for chunk in chunks(pending, 2000):
        inputs = await asyncio.to_thread(load, chunk)
        await start_cascades(client, settings, inputs, on_progress=on_progress)
    return LaunchResult(run_id, loaded.spec.campaign, len(pending), excluded, loaded.notes)
