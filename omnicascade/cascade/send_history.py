"""The engagement history send-time optimisation decides on (cascade/send_time.py chooses):
a customer's own opens, clicks and conversions, and the audience's opens and clicks on a
channel, as local minutes of the week. Read by the deliver activity (through the ledger's
`load_facts`) and by `campaign preview`.

A machine open is stored as `machine_open` (vocabulary.MACHINE_OPEN), so it is never
among the events read here. The audience's history is the most recent `AUDIENCE_SAMPLE`
engagements on the channel, each in its own customer's zone, read once per process every
`AUDIENCE_TTL_S` seconds: one small query per channel, not one per send.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.steps import SendTimePolicy
from omnicascade.campaign.variants import variant_steps
from omnicascade.cascade.send_time import Engagements, SendTimeFacts, week_minute
from omnicascade.clock import RunClock
from omnicascade.customers.quiet_hours import customer_zone
from omnicascade.db.models import ConversionEvent, Customer, Delivery, DeliveryEvent
from omnicascade.vocabulary import CLICK_EVENTS, OPEN_EVENTS, DeliveryStatus, Phase, SkipReason
from omnicascade.workflows.types import StepPlan

MINE_SAMPLE = 500          # a customer's most recent engagements of each kind
AUDIENCE_SAMPLE = 5000     # the audience's most recent engagements on a channel
AUDIENCE_TTL_S = 300.0
_OPENS = sorted(OPEN_EVENTS)  # a click proves an open: both count
_audience: dict[tuple[str, str, str | None], tuple[float, Engagements]] = {}


def _kind(event: str) -> str:
    return "click" if event in CLICK_EVENTS else "open"


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def customer_engagements(customer_id: str, zone: ZoneInfo, *,
                         session: Session) -> Engagements:
    """The customer's own opens and clicks (every channel) and conversions."""
    events = session.execute(
        select(DeliveryEvent.occurred_at, DeliveryEvent.event)
        .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
        .where(Delivery.customer_id == customer_id, DeliveryEvent.event.in_(_OPENS))
        .order_by(DeliveryEvent.occurred_at.desc()).limit(MINE_SAMPLE)).all()
    bought = session.scalars(
        select(ConversionEvent.occurred_at).where(ConversionEvent.customer_id == customer_id)
        .order_by(ConversionEvent.occurred_at.desc()).limit(MINE_SAMPLE)).all()
    moments = [(at, _kind(event)) for at, event in events] + [(at, "conversion")
                                                              for at in bought]
    return Engagements(tuple(week_minute(_aware(at), zone) for at, _ in moments),
                       frozenset(kind for _, kind in moments))


def audience_engagements(channel: str, campaign_tz: str | None, *, session: Session,
                         ttl_s: float = AUDIENCE_TTL_S) -> Engagements:
    """Everyone's recent opens and clicks on `channel`, each in its customer's own zone
    (cached for `ttl_s` per process and database)."""
    key = (str(session.get_bind().engine.url), channel, campaign_tz)
    hit = _audience.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < ttl_s:
        return hit[1]
    rows = session.execute(
        select(DeliveryEvent.occurred_at, DeliveryEvent.event, Customer.timezone,
               Customer.phone)
        .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
        .join(Customer, Customer.id == Delivery.customer_id, isouter=True)
        .where(Delivery.channel == channel, DeliveryEvent.event.in_(_OPENS))
        .order_by(DeliveryEvent.id.desc()).limit(AUDIENCE_SAMPLE)).all()
    zones: dict[tuple[str | None, str | None], ZoneInfo] = {}
    minutes = []
    for at, _, tz, phone in rows:
        zone = zones.get((tz, phone))
        if zone is None:
            zone = zones[(tz, phone)] = customer_zone(tz, phone, campaign_tz)
        minutes.append(week_minute(_aware(at), zone))
    found = Engagements(tuple(minutes), frozenset(_kind(r[1]) for r in rows))
    _audience[key] = (now, found)
    return found


def forget_audience() -> None:
    """Drop the cached audience histories (tests; a process that imported history)."""
    _audience.clear()


def step_send_time(spec: CampaignSpec, variant: str, step: StepPlan) -> SendTimePolicy | None:
    """The send-time optimisation of a cascade step as written in the customer's variant
    (follow-ups go out when due)."""
    steps = variant_steps(spec, variant)
    if step.phase != Phase.CASCADE or not 0 <= step.index < len(steps):
        return None
    return spec.send_time_for(steps[step.index])


def send_time_facts(policy: SendTimePolicy, channel: str, customer: Customer | None,
                    campaign_tz: str | None, *, session: Session) -> SendTimeFacts:
    """Everything the send-time guard needs to choose an hour for this customer."""
    zone = customer_zone(customer.timezone if customer else None,
                         customer.phone if customer else None, campaign_tz)
    mine = customer_engagements(customer.id, zone, session=session) if customer \
        else Engagements()
    return SendTimeFacts(policy, channel, mine,
                         audience_engagements(channel, campaign_tz, session=session))


def ledger_send_time(spec: CampaignSpec, variant: str, step: StepPlan, row: Delivery | None,
                     customer: Customer | None, clock: RunClock, *,
                     session: Session) -> SendTimeFacts | None:
    """The send-time facts of a delivery attempt. The first attempt chooses; an attempt
    after a send-time deferral keeps the instant the ledger recorded (on the run's clock),
    so the step is deferred for its send time once; any other earlier attempt (a quiet-hour
    deferral, a held or retried send) already decided against moving it."""
    policy = step_send_time(spec, variant, step)
    if policy is None:
        return None
    if row is None:
        return send_time_facts(policy, step.channel, customer, spec.timezone, session=session)
    if row.status == DeliveryStatus.DEFERRED and row.reason == SkipReason.SEND_TIME \
            and row.deferred_until is not None:
        planned = clock.campaign(row.deferred_until).replace(tzinfo=UTC)
        return SendTimeFacts(policy, step.channel, planned=planned)
    return None
