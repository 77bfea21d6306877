"""Conversations on phone channels (SMS, WhatsApp), each answered by one indexed query.

- The 24 h customer-service window: WhatsApp accepts a free-form message (no approved
  template) only within 24 h of the customer's last message to us on WhatsApp. Every
  inbound message is stored with its sender (`delivery_events.address`,
  "<channel>:<number>"), so the window is the newest such row. Whether a step needs the
  window is a fact of the send decision (cascade/decision.py, skip `window_closed`), so the
  deliver activity and `campaign preview` answer it alike.
- Replies: an inbound message (not a STOP / START / HELP keyword) is a reply to the most
  recent message sent on that channel to that number within REPLY_WINDOW, recorded as a
  `reply` event on that delivery: `skip_if: [replied]` and the reports see it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.db.models import Customer, Delivery, DeliveryEvent
from omnicascade.vocabulary import WENT_OUT

SERVICE_WINDOW = timedelta(hours=24)  # WhatsApp's customer-service window
REPLY_WINDOW = timedelta(days=7)      # an answer later than this replies to nothing


def inbound_address(channel: str, number: str) -> str:
    """How an inbound message's sender is stored: "whatsapp:+4915…"."""
    return f"{channel}:{number}"[:80]


def window_closes(channel: str, number: str, *, session: Session) -> datetime | None:
    """When the 24 h window `number` opened on `channel` closes (naive UTC; None: they
    never wrote to us there). One indexed query (delivery_events address, occurred_at)."""
    last = session.scalar(select(func.max(DeliveryEvent.occurred_at)).where(
        DeliveryEvent.address == inbound_address(channel, number)))
    return last + SERVICE_WINDOW if last is not None else None


def window_open(channel: str, number: str, now: datetime, *, session: Session) -> bool:
    """Did `number` write to us on `channel` within the 24 h before `now` (naive UTC)?"""
    closes = window_closes(channel, number, session=session)
    return closes is not None and closes > now


def replied_delivery(channel: str, number: str, at: datetime, *,
                     session: Session) -> str | None:
    """The delivery an inbound message at `at` answers: the latest one sent on `channel`
    to `number` (the customer with that phone) in the REPLY_WINDOW before it."""
    return session.scalar(
        select(Delivery.id).join(Customer, Customer.id == Delivery.customer_id)
        .where(Customer.phone == number, Delivery.channel == channel,
               Delivery.to_address == number, Delivery.status.in_(WENT_OUT),
               Delivery.sent_at >= at - REPLY_WINDOW, Delivery.sent_at <= at)
        .order_by(Delivery.sent_at.desc()).limit(1))
