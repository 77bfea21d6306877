"""Runs and enrollments: write the rows first (one per run and customer, enforced in SQL),
then start one CustomerCascade per enrollment with a deterministic workflow id.

Because the rows are committed before any workflow starts and starting is idempotent, a
launcher that dies halfway loses nothing: the worker's reconciler starts whatever is
still `pending`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from omnicascade import ordering
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Enrollment, Run, utcnow
from omnicascade.db.session import session_scope
from omnicascade.experiment import HOLDOUT, assign_variant
from omnicascade.spec import CHANNELS, CampaignSpec, LoadedCampaign, Promo, Step, spec_from_snapshot
from omnicascade.workflows import search
from omnicascade.workflows.types import CascadeInput, StepPlan

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud
_RANDOM = re.compile(r"\{random:(\d+)\}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def create_run(loaded: LoadedCampaign, *, session: Session, time_scale: float = 1.0,
               audience_total: int = 0) -> Run:
    spec = loaded.spec
    run = Run(id=new_id("run"), campaign=spec.campaign, description=spec.description,
              snapshot=loaded.snapshot(),
              trigger_event=spec.trigger.event if spec.trigger else None,
              status="listening" if spec.trigger else "running", time_scale=time_scale,
              audience_total=audience_total)
    session.add(run)
    session.flush()
    return run


_spec_cache: dict[str, CampaignSpec] = {}


def run_spec(run: Run) -> CampaignSpec:
    """Runs are immutable once launched, so their parsed spec is cached per process."""
    spec = _spec_cache.get(run.id)
    if spec is None:
        spec = _spec_cache[run.id] = spec_from_snapshot(run.snapshot)
    return spec


def variant_steps(spec: CampaignSpec, variant: str) -> list[Step]:
    if spec.experiment and variant in spec.experiment.variants:
        return list(spec.experiment.variants[variant].steps or spec.steps)
    return list(spec.steps)


def variant_order(spec: CampaignSpec, variant: str) -> str:
    if spec.experiment and variant in spec.experiment.variants:
        return spec.experiment.variants[variant].order or spec.order
    return spec.order


def variant_promo(spec: CampaignSpec, variant: str) -> Promo | None:
    if variant == HOLDOUT:
        return None  # the holdout gets no messages, so no code either
    if spec.experiment and variant in spec.experiment.variants:
        return spec.experiment.variants[variant].promo or spec.promo
    return spec.promo


def plan(spec: CampaignSpec, variant: str = "default",
         channel_order: list[int] | None = None) -> tuple[list[StepPlan], list[StepPlan]]:
    steps = variant_steps(spec, variant)
    order = channel_order if channel_order and sorted(channel_order) == list(
        range(len(steps))) else list(range(len(steps)))
    # Keys and indices stay those of the step as written, so ledger ids are stable and
    # reports can tell which step (template, channel) a message came from.
    cascade = [StepPlan(str(i), i, steps[i].channel, steps[i].template, steps[i].wait)
               for i in order]
    follow = [StepPlan(f"ac{i}", i, f.channel, f.template, f.delay, phase="follow_up")
              for i, f in enumerate(spec.after_conversion)]
    return cascade, follow


def promo_code(pattern: str) -> str:
    return _RANDOM.sub(lambda m: "".join(secrets.choice(_CODE_ALPHABET)
                                         for _ in range(int(m.group(1)))), pattern)


def _unique_codes(pattern: str, n: int, *, session: Session) -> list[str]:
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < n:
        batch = list({promo_code(pattern) for _ in range(n - len(codes))} - seen)
        taken: set[str] = set()
        for start in range(0, len(batch), 500):  # stay under SQLite's bound-variable limit
            taken.update(session.scalars(select(Enrollment.promo_code).where(
                Enrollment.promo_code.in_(batch[start:start + 500]))))
        fresh = [c for c in batch if c not in taken]
        seen.update(fresh)
        codes.extend(fresh)
    return codes


def converted_within_lookback(spec: CampaignSpec, customer_ids: Sequence[str], *,
                              session: Session) -> set[str]:
    """Customers whose matching conversion falls in [now - lookback, now]: not enrolled."""
    if not spec.conversion_events or not customer_ids:
        return set()
    since = utcnow() - timedelta(seconds=spec.lookback_s)
    found: set[str] = set()
    for start in range(0, len(customer_ids), 500):
        found.update(session.scalars(
            select(ConversionEvent.customer_id).where(
                ConversionEvent.customer_id.in_(customer_ids[start:start + 500]),
                ConversionEvent.type.in_(spec.conversion_events),
                ConversionEvent.occurred_at >= since)))
    return found


def _orders(spec: CampaignSpec, ids: list[str], variants: dict[str, str],
            settings: Settings | None, *, session: Session) -> dict[str, tuple[str, list[int]]]:
    """(strategy, resolved step order) for each customer that needs one."""
    strategies = {c: variant_order(spec, variants[c]) for c in ids}
    need = [c for c in ids if strategies[c] != "as_written"]
    out = {c: (strategies[c], list(range(len(variant_steps(spec, variants[c])))))
           for c in ids}
    if not need:
        return out
    from omnicascade.config import load_settings
    costs = {ch: (settings or load_settings()).unit_cost(ch) for ch in CHANNELS}
    customers = ordering.load_customers(need, session=session)
    suppressed = ordering.load_suppressed(customers, session=session)
    prefer = [c for c in need if strategies[c] == "preference"]
    scores = ordering.history(prefer, session=session) if prefer else {}
    for c in need:
        reach = ordering.reachable_channels(customers.get(c), suppressed)
        out[c] = (strategies[c], ordering.resolve(variant_steps(spec, variants[c]),
                                                  strategies[c], reach, scores.get(c, {}),
                                                  costs))
    return out


def enroll_customers(run: Run, customer_ids: Sequence[str], *, session: Session,
                     event_id: str | None = None, event_data: dict[str, Any] | None = None,
                     settings: Settings | None = None) -> list[Enrollment]:
    """Insert enrollment rows for customers not yet in this run; returns the new rows
    (status `pending`, or `excluded` with exit_reason `converted`). Each row carries its
    variant (stable hash), its resolved channel order and its own promo code."""
    spec = run_spec(run)
    ids = list(dict.fromkeys(customer_ids))
    already: set[str] = set()
    for start in range(0, len(ids), 500):
        already.update(session.scalars(select(Enrollment.customer_id).where(
            Enrollment.run_id == run.id, Enrollment.customer_id.in_(ids[start:start + 500]))))
    ids = [c for c in ids if c not in already]
    excluded = converted_within_lookback(spec, ids, session=session)
    variants = {c: assign_variant(spec, c) for c in ids}
    live = [c for c in ids if c not in excluded]
    orders = _orders(spec, live, variants, settings, session=session)
    codes: dict[str, str] = {}
    by_pattern: dict[str, list[str]] = {}
    for c in live:
        promo = variant_promo(spec, variants[c])
        if promo:
            by_pattern.setdefault(promo.pattern, []).append(c)
    for pattern, members in by_pattern.items():
        codes.update(zip(members, _unique_codes(pattern, len(members), session=session),
                         strict=True))
    now = utcnow()
    rows = []
    for customer_id in ids:
        is_excluded = customer_id in excluded
        strategy, order = orders.get(customer_id, (None, None))
        rows.append(Enrollment(
            id=new_id("enr"), run_id=run.id, customer_id=customer_id,
            variant=variants[customer_id],
            status="excluded" if is_excluded else "pending",
            exit_reason="converted" if is_excluded else None,
            promo_code=codes.get(customer_id), event_data=event_data,
            trigger_event_id=event_id, conversion_events=spec.conversion_events,
            lookback_s=spec.lookback_s, order_strategy=strategy, channel_order=order,
            enrolled_at=now, finished_at=now if is_excluded else None))
    session.add_all(rows)
    session.flush()
    return rows


def cascade_input(run: Run, enrollment: Enrollment, settings: Settings) -> CascadeInput:
    steps, follow = plan(run_spec(run), enrollment.variant, enrollment.channel_order)
    return CascadeInput(enrollment_id=enrollment.id, run_id=run.id, campaign=run.campaign,
                        customer_id=enrollment.customer_id, steps=steps, follow_ups=follow,
                        holdout=enrollment.variant == HOLDOUT,
                        time_scale=run.time_scale, send_timeout_s=settings.send_timeout_s,
                        send_max_attempts=settings.send_max_attempts,
                        send_initial_retry_s=settings.send_initial_retry_s,
                        search_attributes=settings.search_attributes)


async def start_cascade(client: Client, settings: Settings, inp: CascadeInput) -> bool:
    """Start one cascade; False if it was already started (idempotent by workflow id)."""
    attrs = None
    if settings.search_attributes:
        attrs = TypedSearchAttributes([
            SearchAttributePair(search.CAMPAIGN, inp.campaign),
            SearchAttributePair(search.RUN, inp.run_id),
            SearchAttributePair(search.CUSTOMER, inp.customer_id),
            SearchAttributePair(search.STATUS, "active")])
    try:
        await client.start_workflow(
            "CustomerCascade", inp, id=search.workflow_id(inp.enrollment_id),
            task_queue=settings.task_queue, search_attributes=attrs,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        return True
    except WorkflowAlreadyStartedError:
        return False


async def start_cascades(client: Client, settings: Settings, inputs: Iterable[CascadeInput],
                         *, on_progress: Callable[[int], None] | None = None,
                         chunk: int = 500) -> int:
    """Start many cascades with bounded concurrency, marking each chunk active in the DB."""

    def activate(ids: list[str]) -> None:
        with session_scope(settings.db_url) as session:
            mark_active(ids, session=session)
    limit = asyncio.Semaphore(settings.start_concurrency)

    async def one(inp: CascadeInput) -> None:
        async with limit:
            await start_cascade(client, settings, inp)

    done = 0
    batch: list[CascadeInput] = []

    async def flush() -> None:
        nonlocal done
        await asyncio.gather(*(one(i) for i in batch))
        await asyncio.to_thread(activate, [i.enrollment_id for i in batch])
        done += len(batch)
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for inp in inputs:
        batch.append(inp)
        if len(batch) >= chunk:
            await flush()
    if batch:
        await flush()
    return done


def mark_active(enrollment_ids: list[str], *, session: Session) -> None:
    session.execute(update(Enrollment).where(Enrollment.id.in_(enrollment_ids),
                                             Enrollment.status == "pending")
                    .values(status="active", started_at=utcnow()))
