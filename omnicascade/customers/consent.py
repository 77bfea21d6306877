"""Consent is law: suppressions are global (every campaign, every run) and are checked before
every send. Everything that adds, lifts or looks up a suppression is here."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.customers.model import ADDRESS_FIELD, address_for
from omnicascade.db.models import Customer, Enrollment, Suppression
from omnicascade.db.query import rows_in

Suppressed = frozenset[tuple[str, str]]  # (channel, address)


def suppress(channel: str, address: str, reason: str, *, session: Session) -> bool:
    """Add a suppression; False if the address was already suppressed on that channel."""
    found = session.scalar(select(Suppression).where(Suppression.channel == channel,
                                                     Suppression.address == address))
    if found is not None:
        return False
    session.add(Suppression(channel=channel, address=address, reason=reason))
    session.flush()
    return True


def lift_suppression(channel: str, address: str, reasons: tuple[str, ...], *,
                     session: Session) -> int:
    """The person opted back in (SMS START, a new Telegram /start): lift only suppressions
    for these reasons — never a bounce the provider reported."""
    result = session.execute(delete(Suppression).where(
        Suppression.channel == channel, Suppression.address == address,
        Suppression.reason.in_(reasons)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def is_suppressed(channel: str, address: str, *, session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Suppression.channel == channel,
                                                     Suppression.address == address))))


def load_suppressed(customers: Iterable[Customer], *, session: Session) -> Suppressed:
    """Every suppressed (channel, address) among these customers' addresses."""
    addresses = sorted({getattr(c, f) for c in customers for f in ADDRESS_FIELD.values()}
                       - {None})
    return frozenset((ch, addr) for ch, addr in rows_in(
        session, lambda chunk: select(Suppression.channel, Suppression.address)
        .where(Suppression.address.in_(chunk)), addresses))


def unsubscribe(enrollment_id: str, channel: str, *, session: Session) -> bool:
    """One-click unsubscribe from a message's link: suppress that channel's address."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or channel not in ADDRESS_FIELD:
        return False
    address = address_for(session.get(Customer, enrollment.customer_id), channel)
    if not address:
        return False
    return suppress(channel, address, "unsubscribed", session=session)


def forget_address(customer_id: str, channel: str, address: str, *, session: Session) -> bool:
    """Remove a dead address (an unregistered push token) from the customer, if still set."""
    customer = session.get(Customer, customer_id)
    if customer is None or address_for(customer, channel) != address:
        return False
    setattr(customer, ADDRESS_FIELD[channel], None)
    customer.updated_at = now_utc()
    return True
