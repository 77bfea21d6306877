"""The frequency cap's count (promise 3): how many messages a customer got in the cap's
window, across every campaign, and when the window admits one more — what the send-time
guard (cascade/decision.py `_frequency_cap`) decides a capped step's deferral by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec
from omnicascade.cascade.decision import applies_to
from omnicascade.clock import LIVE, RunClock, now_utc
from omnicascade.db.models import Customer, Delivery
from omnicascade.vocabulary import DeliveryStatus

# Count against a frequency cap: handed to a provider, possibly, or about to be.
CAPPED = (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN, DeliveryStatus.SENDING)
# A send leaves the window strictly after `per`: the first instant it no longer counts
LEAVES = timedelta(seconds=1)


def cap_window(spec: CampaignSpec, customer_id: str, delivery_id: str, channel: str, *,
               session: Session, lock: bool, clock: RunClock = LIVE,
               now: datetime | None = None) -> tuple[int, datetime | None] | None:
    """(messages in the window, when the window admits one more — a campaign-clock instant,
    aware; None while it admits one now), or None when no cap applies. `now` is naive UTC
    wall time (default: now_utc). A message counts from when it was handed over (its
    `sending_at`; a row never claimed, from its creation). With `lock` the customer row is
    locked first (SQLite: the transaction already holds the write lock), so two campaigns
    racing for one customer cannot both slip under the cap. The window is the run's: a
    rehearsal's "24 h" lasts 24 h of campaign time."""
    cap = spec.frequency_cap
    if cap is None or not applies_to(cap, channel):
        return None
    if lock:
        session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    span = clock.wall_span(timedelta(seconds=cap.per))
    at = func.coalesce(Delivery.sending_at, Delivery.created_at)
    q = select(at).where(Delivery.customer_id == customer_id, Delivery.id != delivery_id,
                         Delivery.status.in_(CAPPED), at >= (now or now_utc()) - span)
    if cap.channels:
        q = q.where(Delivery.channel.in_(cap.channels))
    times = sorted(session.scalars(q))
    if len(times) < cap.max:
        return len(times), None
    # one more fits once the oldest `len - max + 1` of them have left the window
    leaves = times[len(times) - cap.max] + span + clock.wall_span(LEAVES)
    return len(times), clock.campaign(leaves).replace(tzinfo=UTC)


def sends_in_window(spec: CampaignSpec, customer_id: str, delivery_id: str, channel: str,
                    *, session: Session, lock: bool, clock: RunClock = LIVE) -> int | None:
    """Messages to this customer in the cap's window (None: no cap applies)."""
    found = cap_window(spec, customer_id, delivery_id, channel, session=session, lock=lock,
                       clock=clock)
    return None if found is None else found[0]
