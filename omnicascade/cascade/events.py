"""Trigger events from the shop: store first (promise 4), then enroll into listening runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade import destinations, lifecycle
from omnicascade.cascade.cascade_input import cascade_input, run_spec
from omnicascade.cascade.enroll import enroll_customers
from omnicascade.cascade.entries import (
    ACTIVE,
    MissingKey,
    Refusal,
    entry_key,
    key_matches,
    live_cascades,
)
from omnicascade.cascade.temporal import signal_stop, start_cascades
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Customer, InboundEvent, Run, to_utc_naive
from omnicascade.db.session import read_scope, session_scope
from omnicascade.validation import event_name, storable, utc_naive
from omnicascade.vocabulary import ENROLLING_RUN, EnrollmentStatus
from omnicascade.workflows.types import CascadeInput


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too
    _utc = field_validator("occurred_at")(utc_naive)  # 422, not an overflow later

    event_id: str = Field(min_length=1, max_length=255)
    customer_id: str = Field(min_length=1, max_length=255)
    type: Annotated[str, AfterValidator(event_name)]  # the YAML's rule too
    data: dict[str, Any] | None = None
    occurred_at: datetime | None = None


class UnknownCustomer(ValueError):
    pass


def store_event(data: EventIn, *, session: Session) -> tuple[InboundEvent, bool]:
    """Returns (row, duplicate). Raises UnknownCustomer before writing anything."""
    existing = session.scalar(select(InboundEvent).where(InboundEvent.event_id == data.event_id))
    if existing is not None:
        return existing, True
    if session.get(Customer, data.customer_id) is None:
        raise UnknownCustomer(f"unknown customer {data.customer_id!r}; create it with "
                              f"POST /v1/customers first")
    row = InboundEvent(event_id=data.event_id, customer_id=data.customer_id, type=data.type,
                       data=data.data, occurred_at=to_utc_naive(data.occurred_at)
                       if data.occurred_at else now_utc())
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(InboundEvent)
                                  .where(InboundEvent.event_id == data.event_id))
        assert existing is not None
        return existing, True
    return row, False


@dataclass
class EventWork:
    """What processing an event does: cascades to start, and cascades an exit event ended
    (both acted on after the commit)."""
    inputs: list[CascadeInput] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    exit_reason: str = ""


def enroll_event(event_id: str, settings: Settings, *, session: Session) -> EventWork:
    """Act on an unprocessed event: end the customer's cascades it is an exit event for,
    then enroll its entry into every enrolling version it triggers. What it did, and why it
    did not enroll where it did not, is stored on the event (`outcome`) so a repeated
    event_id gets the same answer. The caller commits, then acts on the returned work."""
    work = EventWork()
    # Locked (PostgreSQL; SQLite's writers queue anyway): a repeat racing the first request,
    # or the reconciler, waits here and then finds it processed, so it is processed once.
    event = session.scalar(select(InboundEvent).where(InboundEvent.event_id == event_id)
                           .with_for_update())
    if event is None or event.processed_at is not None:
        return work
    work.exited, work.exit_reason = _exit(event, session=session), event.type
    not_enrolled: list[dict[str, Any]] = []
    campaigns: list[dict[str, Any]] = []  # every campaign listening: enrolled, or why not
    runs = session.scalars(select(Run).where(Run.status.in_(ENROLLING_RUN),
                                             Run.trigger_event == event.type)
                           .order_by(Run.campaign, Run.created_at))
    for run in runs:
        spec = run_spec(run)
        try:
            key = entry_key(spec, event.data)
        except MissingKey as exc:
            not_enrolled.append({"campaign": run.campaign, "reason": str(exc)})
            campaigns.append(destinations.entry(run, False, str(exc)))
            continue
        refused: list[Refusal] = []
        try:
            with session.begin_nested():  # a racing request may take the entry first
                rows = enroll_customers(run, [event.customer_id], session=session,
                                        settings=settings, event_id=event.event_id,
                                        event_data=event.data, key=key, refused=refused)
        except IntegrityError:
            rows, refused = [], [Refusal(event.customer_id, key, ACTIVE)]
        for refusal in refused:
            not_enrolled.append({"campaign": run.campaign, "reason": refusal.reason})
            campaigns.append(destinations.entry(
                run, False, destinations.refusal_words(refusal.reason, spec, key)))
        for enrollment in rows:
            if enrollment.status == EnrollmentStatus.PENDING:
                work.inputs.append(cascade_input(run, enrollment, settings))
                event.enrolled += 1
                campaigns.append(destinations.entry(run, True))
            elif enrollment.status == EnrollmentStatus.GLOBAL_CONTROL:
                event.enrolled += 1  # counted like a holdout; no cascade, no message
                campaigns.append(destinations.entry(run, True))
            else:
                not_enrolled.append({"campaign": run.campaign,
                                     "reason": "converted within the lookback"})
                campaigns.append(destinations.entry(run, False,
                                                    destinations.converted_words(spec)))
    listening = {c["campaign"] for c in campaigns}
    idle = destinations.idle_runs(event.type, listening, session=session)
    outcome: dict[str, Any] = {"not_enrolled": not_enrolled, "exited": len(work.exited),
                               "campaigns": campaigns + idle}
    if not listening:
        outcome["note"] = destinations.nowhere_note(event.type, len(work.exited), idle,
                                                    session=session)
    event.outcome = outcome
    event.processed_at = now_utc()
    return work


def _exit(event: InboundEvent, *, session: Session) -> list[str]:
    """End the customer's live cascades in campaigns that list this type under
    `exit.events` (keys respected), as `exited`: not a conversion, no follow-ups."""
    ending = []
    specs: dict[str, Any] = {}
    for enrollment in live_cascades(event.customer_id, session=session):
        if enrollment.run_id not in specs:
            run = session.get(Run, enrollment.run_id)
            specs[enrollment.run_id] = run_spec(run) if run is not None else None
        spec = specs[enrollment.run_id]
        if spec is not None and event.type in spec.exit_events and \
                key_matches(enrollment, event.data, None):
            ending.append(enrollment.id)
    if ending:
        lifecycle.end_live(session=session, status=EnrollmentStatus.EXITED,
                           reason=event.type, enrollment_ids=ending)
    return ending


def answer(event: InboundEvent) -> dict[str, Any]:
    """The API's answer for a stored event (the same for a repeated event_id)."""
    body: dict[str, Any] = {"event_id": event.event_id, "customer_id": event.customer_id,
                            "enrolled": event.enrolled}
    outcome = event.outcome or {}
    # `campaigns`: where the event went (an event processed before it was recorded, or not
    # processed yet, has none to show)
    body["campaigns"] = outcome.get("campaigns", [])
    if outcome.get("note"):
        body["note"] = outcome["note"]
    elif event.processed_at is None:
        body["note"] = "stored; the worker enrolls it shortly (Temporal is not reachable now)"
    if outcome.get("not_enrolled"):
        body["not_enrolled"] = outcome["not_enrolled"]
    if outcome.get("exited"):
        body["exited"] = outcome["exited"]
    return body


def stored_answer(db_url: str, event_id: str) -> dict[str, Any]:
    with read_scope(db_url) as session:
        event = session.scalar(select(InboundEvent).where(InboundEvent.event_id == event_id))
        assert event is not None  # stored before it was processed
        return answer(event)


async def process_event(client: Client, settings: Settings, event_id: str) -> int:
    def tx() -> EventWork:
        with session_scope(settings.db_url) as session:
            return enroll_event(event_id, settings, session=session)
    work = await asyncio.to_thread(tx)
    if work.exited:  # committed: the send-time guard already stops them
        await signal_stop(client, work.exited, EnrollmentStatus.EXITED, work.exit_reason,
                          settings.signal_timeout_s)
    await start_cascades(client, settings, work.inputs)
    return len(work.inputs)
