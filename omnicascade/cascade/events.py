"""Trigger events from the shop: store first (promise 4), then enroll into listening runs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade.enroll import enroll_customers
from omnicascade.cascade.plan import cascade_input
from omnicascade.cascade.temporal import start_cascades
from omnicascade.config import Settings
from omnicascade.db.models import Customer, InboundEvent, Run, to_utc_naive, utcnow
from omnicascade.db.session import session_scope
from omnicascade.validation import storable
from omnicascade.vocabulary import EnrollmentStatus, RunStatus
from omnicascade.workflows.types import CascadeInput


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too

    event_id: str = Field(min_length=1, max_length=255)
    customer_id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=128)
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
                       data=data.data,
                       occurred_at=to_utc_naive(data.occurred_at) if data.occurred_at else utcnow())
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


def enroll_event(event_id: str, settings: Settings, *, session: Session) -> list[CascadeInput]:
    """Create enrollments for an unprocessed event in every listening run it triggers.
    Returns the cascade inputs to start (the caller commits first)."""
    event = session.scalar(select(InboundEvent).where(InboundEvent.event_id == event_id))
    if event is None or event.processed_at is not None:
        return []
    inputs = []
    runs = session.scalars(select(Run).where(Run.status == RunStatus.LISTENING,
                                             Run.trigger_event == event.type))
    for run in runs:
        for enrollment in enroll_customers(run, [event.customer_id], session=session,
                                           settings=settings,
                                           event_id=event.event_id, event_data=event.data):
            if enrollment.status == EnrollmentStatus.PENDING:
                inputs.append(cascade_input(run, enrollment, settings))
            event.enrolled += 1
    event.processed_at = utcnow()
    return inputs


async def process_event(client: Client, settings: Settings, event_id: str) -> int:
    def tx() -> list[CascadeInput]:
        with session_scope(settings.db_url) as session:
            return enroll_event(event_id, settings, session=session)
    inputs = await asyncio.to_thread(tx)

    await start_cascades(client, settings, inputs)
    return len(inputs)
