"""Helpers for cascade tests: enroll customers into a launched run directly through the
library (the same functions the CLI and API use) and start their workflows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.conversions import ConversionIn, record_conversion, tell_cascades
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.lifecycle import activate
from omnicascade.cascade.temporal import start_cascade, workflow_id
from omnicascade.cascade.versions import Versioning, apply_version, enrolling_version
from omnicascade.channels.base import Channel, Message, SendResult
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Delivery, Enrollment, OutboxMessage
from omnicascade.db.session import session_scope
from omnicascade.runtime.worker import build_worker
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.cascade import CustomerCascade
from omnicascade.workflows.types import DeliverInput, DeliverResult, Progress, Stage, StepPlan
from tests.helpers.waiting import eventually


def add_customers(settings: Settings, *customers: dict[str, Any]) -> None:
    with session_scope(settings.db_url) as s:
        upsert_customers([CustomerIn(**c) for c in customers], session=s)


async def enroll(client: Client, settings: Settings, campaign: Path,
                 customer_ids: Sequence[str], event: dict[str, Any] | None = None,
                 start: bool = True) -> tuple[str, list[Enrollment]]:
    loaded = load_campaign(campaign)
    with session_scope(settings.db_url) as s:
        # a trigger campaign's live version is superseded, as a launch of a changed one does
        live = enrolling_version(loaded.spec.campaign, session=s) if loaded.spec.trigger \
            else None
        plan = Versioning(live.version + 1 if live else 1, "", superseded=live)
        run = create_run(loaded, session=s, version=plan.version,
                         before=lambda new: apply_version(plan, new, session=s))
        rows = enroll_customers(run, customer_ids, session=s, event_data=event)
        inputs = [cascade_input(run, e, settings) for e in rows if e.status == "pending"]
        run_id = run.id
    if start:
        for inp in inputs:
            await start_cascade(client, settings, inp)
        with session_scope(settings.db_url) as s:
            activate([i.enrollment_id for i in inputs], session=s)
    return run_id, rows


def handle(client: Client, enrollment_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id(enrollment_id))


async def convert(client: Client | None, settings: Settings, customer_id: str,
                  event_id: str = "conv-1", type_: str = "order_placed",
                  occurred_at: datetime | None = None, signal: bool = True) -> dict[str, Any]:
    with session_scope(settings.db_url) as s:
        outcome = record_conversion(ConversionIn(event_id=event_id, type=type_,
                                                 customer_id=customer_id,
                                                 occurred_at=occurred_at), session=s)
    if signal and client is not None:
        await tell_cascades(client, outcome)
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
        activate([i.enrollment_id for i in inputs], session=s)


@asynccontextmanager
async def running_worker(env: WorkflowEnvironment, settings: Settings,
                         channel: Channel | None = None) -> AsyncIterator[None]:
    """The real worker (workflow + activities) with every channel on `channel` (default: the
    outbox) for the duration of the block."""
    ch = channel or OutboxChannel(settings.db_url)
    async with build_worker(env.client, settings, {c: ch for c in CHANNELS}):
        yield


@dataclass
class Cascades:
    """A launched run's enrollments with their workflows on the running worker: one place for
    what a cascade test does to a customer's cascade (see `cascade_of`)."""

    env: WorkflowEnvironment
    settings: Settings
    run_id: str
    rows: list[Enrollment]

    @property
    def client(self) -> Client:
        return self.env.client

    def row(self, customer_id: str) -> Enrollment:
        """The enrollment of `customer_id` as enrolled (its status then, not now)."""
        [e] = [r for r in self.rows if r.customer_id == customer_id]
        return e

    def handle(self, customer_id: str) -> WorkflowHandle:
        return handle(self.client, self.row(customer_id).id)

    async def wait(self, customer_id: str, stage: Stage, step: str | None = None,
                   timeout: float = 20.0) -> Progress:
        return await wait_state(self.handle(customer_id), stage, step, timeout)

    async def finish(self, customer_id: str, timeout: float = 60) -> Any:
        return await finish(self.env, self.handle(customer_id), timeout)

    async def progress(self, customer_id: str) -> Progress:
        progress: Progress = await self.handle(customer_id).query(CustomerCascade.progress)
        return progress


@asynccontextmanager
async def cascade_of(env: WorkflowEnvironment, settings: Settings, campaign: Path,
                     customers: Sequence[dict[str, Any] | str], channel: Channel | None = None,
                     event: dict[str, Any] | None = None) -> AsyncIterator[Cascades]:
    """The cascade set-up every cascade test repeats: add the `customers` (dicts; a plain id
    is a customer added earlier), start the real worker (every channel on `channel`, default
    the outbox), enroll them all into a new run of `campaign` and start their workflows. The
    worker stops when the block ends; `Cascades.rows` stay readable after it."""
    new = [c for c in customers if isinstance(c, dict)]
    if new:
        add_customers(settings, *new)
    ids = [c if isinstance(c, str) else c["id"] for c in customers]
    async with running_worker(env, settings, channel):
        run_id, rows = await enroll(env.client, settings, campaign, ids, event=event)
        yield Cascades(env, settings, run_id, rows)


async def wait_state(h: WorkflowHandle, stage: Stage, step: str | None = None,
                     timeout: float = 20.0) -> Progress:
    """Poll the progress query (which never advances the skipped clock) until the cascade
    is at `stage` (of `step`, when given): the workflow's Stage, never its words."""
    async def reached() -> Progress | None:
        progress: Progress = await h.query(CustomerCascade.progress)
        if progress.stage == stage and (step is None or progress.step == step):
            return progress
        return None
    where = f"{stage}" + (f" of step {step}" if step is not None else "")
    return await eventually(reached, f"the cascade at {where}", timeout)


def times(progress: Progress) -> list[datetime]:
    """When each timeline entry (send, skip, …) of a cascade happened."""
    return [datetime.fromisoformat(x.at) for x in progress.timeline]


def outbox_activities(settings: Settings) -> DeliverActivities:
    """The real deliver activity with every channel on the outbox provider."""
    outbox_channel = OutboxChannel(settings.db_url)
    return DeliverActivities(settings, {c: outbox_channel for c in CHANNELS})


async def deliver_now(settings: Settings, enrollment_id: str, step: StepPlan,
                      activities: DeliverActivities | None = None) -> DeliverResult:
    """Run one step's deliver activity now (no workflow), as Temporal would."""
    acts = activities or outbox_activities(settings)
    result: DeliverResult = await ActivityEnvironment().run(
        acts.deliver_step, DeliverInput(enrollment_id, step))
    return result
