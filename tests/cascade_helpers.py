"""Helpers for cascade tests: enroll customers into a launched run directly through the
library (the same functions the CLI and API use) and start their workflows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle

from omnicascade.channels.base import Message, SendResult
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.config import Settings
from omnicascade.conversions import ConversionIn, record_conversion, signal_conversion
from omnicascade.customers import CustomerIn, upsert_customers
from omnicascade.db.models import Delivery, Enrollment, OutboxMessage
from omnicascade.db.session import session_scope
from omnicascade.enroll import (
    cascade_input,
    create_run,
    enroll_customers,
    mark_active,
    start_cascade,
)
from omnicascade.spec import load_campaign
from omnicascade.workflows import search

FULL = {"email": "a@example.com", "phone": "+4915112345678", "telegram_chat_id": "42",
        "push_token": "tok"}


def add_customers(settings: Settings, *customers: dict[str, Any]) -> None:
    with session_scope(settings.db_url) as s:
        upsert_customers([CustomerIn(**c) for c in customers], session=s)


async def enroll(client: Client, settings: Settings, campaign: Path,
                 customer_ids: Sequence[str], event: dict[str, Any] | None = None,
                 start: bool = True) -> tuple[str, list[Enrollment]]:
    loaded = load_campaign(campaign)
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s)
        rows = enroll_customers(run, customer_ids, session=s, event_data=event)
        inputs = [cascade_input(run, e, settings) for e in rows if e.status == "pending"]
        run_id = run.id
    if start:
        for inp in inputs:
            await start_cascade(client, settings, inp)
        with session_scope(settings.db_url) as s:
            mark_active([i.enrollment_id for i in inputs], session=s)
    return run_id, rows


def handle(client: Client, enrollment_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(search.workflow_id(enrollment_id))


async def convert(client: Client | None, settings: Settings, customer_id: str,
                  event_id: str = "conv-1", type_: str = "order_placed",
                  occurred_at: datetime | None = None, signal: bool = True) -> dict[str, Any]:
    with session_scope(settings.db_url) as s:
        outcome = record_conversion(ConversionIn(event_id=event_id, type=type_,
                                                 customer_id=customer_id,
                                                 occurred_at=occurred_at), session=s)
    if signal and client is not None:
        await signal_conversion(client, outcome)
    return outcome.body()


def deliveries(settings: Settings, enrollment_id: str) -> dict[str, tuple[str, str | None]]:
    with session_scope(settings.db_url) as s:
        return {d.step_key: (d.status, d.reason) for d in s.scalars(
            select(Delivery).where(Delivery.enrollment_id == enrollment_id))}


def outbox(settings: Settings, customer_id: str | None = None) -> list[OutboxMessage]:
    with session_scope(settings.db_url) as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        if customer_id:
            q = q.where(OutboxMessage.customer_id == customer_id)
        return list(s.scalars(q))


def enrollment(settings: Settings, enrollment_id: str) -> Enrollment:
    with session_scope(settings.db_url) as s:
        row = s.get(Enrollment, enrollment_id)
        assert row is not None
        return row


class GatedChannel(OutboxChannel):
    """The outbox, but each send waits at a gate the test opens: lets a test act while a
    send is in flight with the provider."""

    def __init__(self, db_url: str):
        super().__init__(db_url)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def send(self, message: Message) -> SendResult:
        self.calls.append(message.delivery_id)
        self.entered.set()
        await self.release.wait()
        return await super().send(message)


async def finish(env, h: WorkflowHandle, timeout: float = 60) -> Any:  # noqa: ANN001
    """Await a workflow's result, letting the time-skipping server skip its timers."""
    unlocked = getattr(env, "time_skipping_unlocked", None)
    if unlocked is None:
        return await asyncio.wait_for(h.result(), timeout)
    async with unlocked():
        return await asyncio.wait_for(h.result(), timeout)


async def start_enrollments(client: Client, settings: Settings, rows: list[Enrollment]) -> None:
    """Start the cascades of enrollments written earlier with start=False."""
    from omnicascade.db.models import Run
    with session_scope(settings.db_url) as s:
        inputs = [cascade_input(s.get(Run, e.run_id), s.get(Enrollment, e.id), settings)
                  for e in rows]
    for inp in inputs:
        await start_cascade(client, settings, inp)
    with session_scope(settings.db_url) as s:
        mark_active([i.enrollment_id for i in inputs], session=s)
