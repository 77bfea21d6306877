"""Consent: suppressions are global (every campaign) and checked before every send."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.customers import ADDRESS_FIELD
from omnicascade.db.models import Customer, Enrollment, Suppression


def suppress(channel: str, address: str, reason: str, *, session: Session) -> bool:
    """Add a suppression; False if the address was already suppressed on that channel."""
    exists = session.scalar(select(Suppression).where(Suppression.channel == channel,
                                                      Suppression.address == address))
    if exists is not None:
        return False
    session.add(Suppression(channel=channel, address=address, reason=reason))
    session.flush()
    return True


def unsubscribe(enrollment_id: str, channel: str, *, session: Session) -> bool:
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or channel not in ADDRESS_FIELD:
        return False
    customer = session.get(Customer, enrollment.customer_id)
    address = getattr(customer, ADDRESS_FIELD[channel], None) if customer else None
    if not address:
        return False
    return suppress(channel, address, "unsubscribed", session=session)
