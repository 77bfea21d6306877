"""Channel order per customer: as written, cheapest reachable first, or the channels this
customer actually answers (conversions attributed to a channel, then clicks, then opens,
falling back to cost). Resolved once at enrollment and stored with it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.customers import ADDRESS_FIELD
from omnicascade.db.models import ConversionEvent, Customer, Delivery, DeliveryEvent, Suppression
from omnicascade.spec import Step

Score = tuple[int, int, int]  # (conversions attributed, clicks, opens)


def reachable_channels(customer: Customer | None, suppressed: set[tuple[str, str]]) -> set[str]:
    if customer is None:
        return set()
    out = set()
    consents = customer.consents or {}
    for channel, field in ADDRESS_FIELD.items():
        address = getattr(customer, field)
        if address and consents.get(channel, True) is not False \
                and (channel, address) not in suppressed:
            out.add(channel)
    return out


def load_customers(ids: Sequence[str], *, session: Session) -> dict[str, Customer]:
    out: dict[str, Customer] = {}
    for start in range(0, len(ids), 500):
        out.update({c.id: c for c in session.scalars(
            select(Customer).where(Customer.id.in_(ids[start:start + 500])))})
    return out


def load_suppressed(customers: dict[str, Customer], *, session: Session) -> set[tuple[str, str]]:
    addresses = {getattr(c, f) for c in customers.values() for f in ADDRESS_FIELD.values()} - {None}
    found: set[tuple[str, str]] = set()
    listed = list(addresses)
    for start in range(0, len(listed), 500):
        found.update(session.execute(select(Suppression.channel, Suppression.address).where(
            Suppression.address.in_(listed[start:start + 500]))).tuples())
    return found


def history(ids: Sequence[str], *, session: Session) -> dict[str, dict[str, Score]]:
    """Per customer and channel: conversions credited to that channel (last message sent
    before the conversion), clicks and opens reported by providers."""
    conv: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    engaged: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        sends: dict[str, list] = defaultdict(list)
        for cid, channel, at in session.execute(
                select(Delivery.customer_id, Delivery.channel, Delivery.sent_at).where(
                    Delivery.customer_id.in_(chunk), Delivery.status == "sent")
                .order_by(Delivery.sent_at)):
            sends[cid].append((at, channel))
        for cid, occurred in session.execute(select(ConversionEvent.customer_id,
                                                    ConversionEvent.occurred_at)
                                             .where(ConversionEvent.customer_id.in_(chunk))):
            before = [ch for at, ch in sends.get(cid, []) if at and at <= occurred]
            if before:
                conv[cid][before[-1]] += 1
        for cid, channel, event, n in session.execute(
                select(Delivery.customer_id, Delivery.channel, DeliveryEvent.event, func.count())
                .join(DeliveryEvent, DeliveryEvent.delivery_id == Delivery.id)
                .where(Delivery.customer_id.in_(chunk), DeliveryEvent.event.in_(("click",
                                                                                 "open")))
                .group_by(Delivery.customer_id, Delivery.channel, DeliveryEvent.event)):
            engaged[cid][channel][0 if event == "click" else 1] += n
    out: dict[str, dict[str, Score]] = {}
    for cid in set(conv) | set(engaged):
        channels = set(conv.get(cid, {})) | set(engaged.get(cid, {}))
        out[cid] = {ch: (conv[cid][ch], engaged[cid][ch][0], engaged[cid][ch][1])
                    for ch in channels}
    return out


def resolve(steps: Sequence[Step], strategy: str, reachable: set[str],
            scores: dict[str, Score], costs: dict[str, float]) -> list[int]:
    """Indices of `steps` in the order to try them. Unreachable steps go last (they will
    be skipped at once, so they must not delay a channel that can reach the customer)."""
    idx = list(range(len(steps)))
    if strategy == "cost":
        return sorted(idx, key=lambda i: (steps[i].channel not in reachable,
                                          costs.get(steps[i].channel, 0.0), i))
    if strategy == "preference":
        def key(i: int):  # noqa: ANN202
            c, k, o = scores.get(steps[i].channel, (0, 0, 0))
            return (steps[i].channel not in reachable, -c, -k, -o,
                    costs.get(steps[i].channel, 0.0), i)
        return sorted(idx, key=key)
    return idx
