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
from sqlalchemy.exc import IntegrityError

from omnicascade.campaign.load import LoadedCampaign
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.entries import Refusal
from omnicascade.cascade.temporal import connect, signal_stop, start_cascades
from omnicascade.cascade.versions import REPLACED, InFlight, Versioning, apply_version, plan_version
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
    version: int = 1
    superseded: str | None = None  # the version this launch replaced
    unchanged: bool = False        # identical to the live version: nothing was created
    skipped: int = 0               # already in a live cascade of this campaign, or reentry
    stopped: int = 0               # in-flight cascades ended (--in-flight stop)

    def json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "campaign": self.campaign, "enrolled": self.enrolled,
                "excluded": self.excluded, "version": self.version,
                "superseded": self.superseded, "unchanged": self.unchanged}


@dataclass
class _Written:
    run_id: str
    pending: list[str]
    excluded: int
    version: Versioning
    skipped: int


@dataclass(frozen=True)
class Rehearsal:
    """How a launch runs: on the wall clock (×1), or as a rehearsal on a clock N times
    faster, sending to the outbox unless `live`."""
    time_scale: float = 1.0
    live: bool = False

    @property
    def sends_live(self) -> bool:
        return self.time_scale == 1.0 or self.live


def read_audience(path: Path) -> list[CustomerIn]:
    """An audience file is a customer file: rows with only an id refer to known customers,
    rows with more columns are upserted like `customers import`."""
    return parse_customer_file(path)


def _write(loaded: LoadedCampaign, audience: list[CustomerIn], settings: Settings,
           clock: Rehearsal, in_flight: InFlight) -> _Written:
    try:
        return _write_once(loaded, audience, settings, clock, in_flight)
    except IntegrityError:
        raise AudienceError(f"another launch of '{loaded.spec.campaign}' was written at the "
                            f"same moment; nothing of this one was: launch it again") from None


def _write_once(loaded: LoadedCampaign, audience: list[CustomerIn], settings: Settings,
                clock: Rehearsal, in_flight: InFlight) -> _Written:
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
        versioning = plan_version(loaded, session=session, in_flight=in_flight,
                                  time_scale=clock.time_scale, sends_live=clock.sends_live)
        if versioning.unchanged is not None:
            return _Written(versioning.unchanged.id, [], 0, versioning, 0)
        run = create_run(loaded, session=session, time_scale=clock.time_scale, live=clock.live,
                         audience_total=len(ids), version=versioning.version,
                         content_hash=versioning.digest, before=lambda new: apply_version(
                             versioning, new, session=session))
        refused: list[Refusal] = []
        rows = enroll_customers(run, ids, session=session, settings=settings, refused=refused)
        return _Written(run.id, [r.id for r in rows if r.status == EnrollmentStatus.PENDING],
                        sum(1 for r in rows if r.status == EnrollmentStatus.EXCLUDED),
                        versioning, len(refused))


async def launch(loaded: LoadedCampaign, settings: Settings, *, audience: list[CustomerIn],
                 time_scale: float = 1.0, live: bool = False, in_flight: InFlight = "keep",
                 on_start: Callable[[int], None] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> LaunchResult:
    client = await connect(settings)  # fail before writing anything if Temporal is down
    written = await asyncio.to_thread(_write, loaded, audience, settings,
                                      Rehearsal(time_scale, live), in_flight)
    run_id, pending, versioning = written.run_id, written.pending, written.version
    if versioning.to_stop:  # committed: now tell them (the send-time guard already knows)
        await signal_stop(client, versioning.to_stop, EnrollmentStatus.STOPPED, REPLACED,
                          settings.signal_timeout_s)
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
    return LaunchResult(run_id, loaded.spec.campaign, len(pending), written.excluded,
                        loaded.notes, version=versioning.version,
                        superseded=versioning.superseded.id if versioning.superseded else None,
                        unchanged=versioning.unchanged is not None, skipped=written.skipped,
                        stopped=len(versioning.to_stop))
