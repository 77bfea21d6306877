"""The delivery ledger (promise 2) and the facts the send-time guards decide on (promise 1
and 3). Plain functions over one session each; deliver.py strings them together:

    load facts (read) → decide → render (no transaction) → claim (write) → send → finish

`claim` re-loads the facts and decides again inside the one short write transaction that
commits the row as `sending`, immediately before the provider call: a conversion, an
unsubscribe or a cap reached while the message was rendering still stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from omnicascade.activities.caps import cap_window
from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.templates.whatsapp import needs_window
from omnicascade.campaign.variants import variant_steps
from omnicascade.cascade import lifecycle
from omnicascade.cascade.cascade_input import run_spec
from omnicascade.cascade.conversations import window_open
from omnicascade.cascade.decision import (
    Decision,
    Recipient,
    Send,
    Situation,
    decide,
)
from omnicascade.cascade.entries import converted_since
from omnicascade.cascade.send_history import ledger_send_time
from omnicascade.clock import LIVE, RunClock, clock_of, now_utc
from omnicascade.config import Settings, load_settings
from omnicascade.customers.consent import forget_address, load_suppressed, suppress
from omnicascade.customers.model import customer_dict, customer_orders
from omnicascade.db.models import Customer, Delivery, DeliveryEvent, Enrollment, Run
from omnicascade.vocabulary import (
    ENGAGEMENT_EVENTS,
    SETTLED,
    WENT_OUT,
    DeliveryStatus,
    EnrollmentStatus,
    Phase,
    RunStatus,
)
from omnicascade.workflows.types import DeliverInput, DeliverResult, StepPlan

DIED_MID_CALL = "attempt died during the provider call; not resent"


@dataclass
class Facts:
    """Everything one attempt needs, read in one transaction, as plain values."""
    delivery_id: str
    row_status: str | None              # the ledger row's status, if it exists
    stored: DeliverResult | None        # a settled row's result
    situation: Situation
    base: dict[str, Any]                # the ledger row's identity columns
    run_id: str = ""
    spec: CampaignSpec | None = None
    templates: dict[str, str] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=dict)
    variant: str = ""
    promo_code: str | None = None
    event_data: dict[str, Any] | None = None
    orders: list[dict[str, Any] | None] = field(default_factory=list)
    clock: RunClock = LIVE              # the run's: a rehearsal's guards use campaign time
    sends_live: bool = True             # False: a rehearsal, every channel sends to the outbox


def result_of(row: Delivery) -> DeliverResult:
    return DeliverResult(row.id, row.status, row.reason, row.provider_message_id)


def step_skip_if(spec: CampaignSpec, variant: str, step: StepPlan) -> frozenset[str]:
    """The `skip_if` of a cascade step as written in the customer's variant."""
    steps = variant_steps(spec, variant)
    if step.phase != Phase.CASCADE or not 0 <= step.index < len(steps):
        return frozenset()
    return frozenset(steps[step.index].skip_if)


def engaged_before(enrollment_id: str, delivery_id: str, skip_if: frozenset[str], *,
                   session: Session) -> frozenset[str]:
    """Which of `skip_if` an earlier message of this cascade has recorded in its stored
    provider feedback (a machine open is stored as `machine_open`: never an open). One small
    indexed query, asked only for a step that has a `skip_if`."""
    events = sorted({e for kind in skip_if for e in ENGAGEMENT_EVENTS[kind]})
    found = set(session.scalars(
        select(DeliveryEvent.event).distinct()
        .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
        .where(Delivery.enrollment_id == enrollment_id, Delivery.id != delivery_id,
               DeliveryEvent.event.in_(events))))
    return frozenset(kind for kind in skip_if if ENGAGEMENT_EVENTS[kind] & found)


# The cascade itself was ended (its run stopped, its version replaced, an exit event, its
# customer erased).
ENDED_EARLY = frozenset({EnrollmentStatus.STOPPED, EnrollmentStatus.EXITED,
                         EnrollmentStatus.ERASED})


def load_facts(inp: DeliverInput, now: datetime, *, session: Session,
               lock: bool = False, recheck_s: float = 300.0, engagement: bool = True) -> Facts:
    """`now` (naive UTC) is the workflow's clock for quiet hours (see deliver._clock), read
    on the run's clock (a rehearsal's campaign time). The run's and the enrollment's status
    are read here too: a stopped run or an ended cascade skips the step, a paused run holds
    it for up to `recheck_s`. With `engagement`, a step with a `skip_if` reads what the
    cascade's earlier messages were engaged with, and a step with `send_time: best` the
    engagement history its best hour is chosen from (the last guard, `claim`, asks neither
    again: the attempt's first decision already did, milliseconds before)."""
    step = inp.step
    delivery_id = f"{inp.enrollment_id}:{step.key}"
    row = session.get(Delivery, delivery_id)
    # The last guard (claim) locks the enrollment (PostgreSQL; SQLite serialises every
    # write): a conversion being recorded for it either committed first, or waits for us.
    enrollment = session.get(Enrollment, inp.enrollment_id, with_for_update=lock or None)
    if enrollment is None:
        raise ApplicationError(f"enrollment {inp.enrollment_id} not found", non_retryable=True)
    run = session.get(Run, enrollment.run_id)
    assert run is not None
    spec = run_spec(run)
    clock = clock_of(run)
    wall_now, now = now, clock.campaign(now)
    base = dict(id=delivery_id, enrollment_id=enrollment.id, run_id=run.id,
                customer_id=enrollment.customer_id, step_key=step.key, step_index=step.index,
                phase=step.phase, channel=step.channel, template=step.template, attempts=0)
    situation = Situation(step.channel, None, now.replace(tzinfo=UTC))
    facts = Facts(delivery_id, row.status if row else None,
                  result_of(row) if row is not None and row.status in SETTLED else None,
                  situation, base)
    if facts.stored is not None or facts.row_status == DeliveryStatus.SENDING:
        return facts
    customer = session.get(Customer, enrollment.customer_id)
    suppressed = load_suppressed([customer], session=session) if customer else frozenset()
    skip_if = step_skip_if(spec, enrollment.variant, step) if engagement else frozenset()
    templates = run.snapshot["templates"].get(step.template, {})
    recipient = Recipient.of(customer, suppressed)
    free_form = needs_window(step.channel, templates)
    cap = cap_window(spec, enrollment.customer_id, delivery_id, step.channel,
                     session=session, lock=lock, clock=clock, now=wall_now)
    to = recipient.addresses.get(step.channel) if recipient else None
    facts.situation = Situation(
        step.channel, recipient, now.replace(tzinfo=UTC),
        converted=step.phase == Phase.CASCADE
        and converted_since(enrollment, session=session),  # keys respected
        stopped=run.status == RunStatus.STOPPED or enrollment.status in ENDED_EARLY,
        paused=run.status == RunStatus.PAUSED,
        recheck=clock.span(timedelta(seconds=recheck_s)),
        quiet_hours=spec.quiet_hours, campaign_timezone=spec.timezone,
        frequency_cap=spec.frequency_cap,
        sends_in_cap_window=cap[0] if cap else None, cap_admits_at=cap[1] if cap else None,
        # a step deferred before (quiet hours, the cap) came due when its row was written
        due=clock.campaign(row.created_at).replace(tzinfo=UTC)
        if row is not None and row.created_at else None,
        skip_if=skip_if, engaged=engaged_before(enrollment.id, delivery_id, skip_if,
                                                session=session) if skip_if else frozenset(),
        send_time=ledger_send_time(spec, enrollment.variant, step, row, customer, clock,
                                   session=session) if engagement else None,
        # WhatsApp's own 24 h, on the wall clock even in a rehearsal: the provider's rule
        needs_window=free_form, window_open=free_form and to is not None
        and window_open(step.channel, to, now_utc(), session=session))
    facts.run_id, facts.spec = run.id, spec
    facts.clock, facts.sends_live = clock, bool(run.sends_live)
    facts.templates = templates
    facts.customer = customer_dict(customer) if customer else {}
    facts.variant, facts.promo_code = enrollment.variant, enrollment.promo_code
    facts.event_data = enrollment.event_data
    if customer and any("favorite_product" in src for src in facts.templates.values()):
        facts.orders = customer_orders(customer.id, session=session)
    return facts


def record(facts: Facts, status: DeliveryStatus, reason: str | None, *, session: Session,
           deferred_until: datetime | None = None) -> DeliverResult:
    """Write the attempt's outcome (insert the row, or update the one a previous attempt
    left `retrying` or `deferred`). `deferred_until` is a wall-clock instant, like every
    stored time."""
    row = session.get(Delivery, facts.delivery_id)
    if row is not None and (row.status in SETTLED or row.status == DeliveryStatus.SENDING):
        return result_of(row)  # an overlapping attempt got there first: never overwrite
    if row is None:
        row = Delivery(**facts.base)
        session.add(row)
    row.status, row.reason = status, reason
    if deferred_until is not None:
        row.deferred_until = deferred_until.astimezone(UTC).replace(tzinfo=None)
    session.flush()
    return result_of(row)


def mark_unknown(delivery_id: str, *, session: Session) -> DeliverResult:
    """A previous attempt died between "about to call the provider" and "provider answered":
    it may have gone out. Never send twice; surface it instead."""
    row = session.get(Delivery, delivery_id)
    assert row is not None
    if row.status == DeliveryStatus.SENDING:
        row.status, row.reason = DeliveryStatus.UNKNOWN, DIED_MID_CALL
        price(row, None)  # it may have gone out: it costs like one that did
        session.flush()
    return result_of(row)


def price(row: Delivery, settings: Settings | None) -> None:
    """A message that went out (or may have) is priced once, when its status says so, and
    its cost is stored with its currency: reports read it and never price again."""
    settings = settings or load_settings()
    row.cost = settings.price_of(row.channel, row.segments)
    row.cost_currency = settings.cost_currency


def claim(inp: DeliverInput, now: datetime, *, session: Session, recheck_s: float = 300.0
          ) -> tuple[Facts, Decision | DeliverResult]:
    """The last guard: decide again on fresh facts (a conversion, a stop or a pause that
    committed while the message was rendering included) and, if the answer is still Send,
    commit the row as `sending` (the caller calls the provider right after the commit)."""
    facts = load_facts(inp, now, session=session, lock=True, recheck_s=recheck_s,
                       engagement=False)
    if facts.stored is not None:
        return facts, facts.stored
    if facts.row_status == DeliveryStatus.SENDING:
        return facts, mark_unknown(facts.delivery_id, session=session)
    decision = decide(facts.situation)
    if not isinstance(decision, Send):
        return facts, decision
    row = session.get(Delivery, facts.delivery_id)
    if row is None:
        row = Delivery(**facts.base)
        session.add(row)
    row.status, row.reason, row.to_address = DeliveryStatus.SENDING, None, facts.situation.address
    row.sending_at = now_utc()
    row.attempts = (row.attempts or 0) + 1
    session.flush()
    return facts, decision


def finish(delivery_id: str, status: DeliveryStatus, reason: str | None, provider: str | None,
           message_id: str | None, *, session: Session, suppress_as: str | None = None,
           segments: int | None = None, settings: Settings | None = None,
           forget: bool = False) -> DeliverResult:
    """Record the provider's answer. `suppress_as` suppresses the address for every
    campaign with that reason; `forget` removes a dead address from the customer. A sent
    message is priced here, once (Settings.price_of), and stored with its currency."""
    row = session.get(Delivery, delivery_id)
    assert row is not None
    row.status, row.reason, row.provider, row.provider_message_id = (status, reason, provider,
                                                                     message_id)
    if status == DeliveryStatus.SENT:
        row.sent_at = now_utc()
        row.segments = segments
    if status in WENT_OUT:
        price(row, settings)
    if suppress_as and row.to_address:  # idempotent: another campaign may have done it
        suppress(row.channel, row.to_address, suppress_as[:64], session=session)
    if forget and row.to_address:
        forget_address(row.customer_id, row.channel, row.to_address, session=session)
    session.flush()
    return result_of(row)


def complete_enrollment(enrollment_id: str, *, session: Session,
                        stopped: bool = False) -> None:
    """The cascade's last step is done: completed, or stopped when the send-time guard
    found its run stopped (a no-op for a cascade the stop already ended)."""
    if stopped:
        lifecycle.finish(enrollment_id, EnrollmentStatus.STOPPED, session=session,
                         exit_reason=RunStatus.STOPPED.value)
    else:
        lifecycle.finish(enrollment_id, EnrollmentStatus.COMPLETED, session=session)
