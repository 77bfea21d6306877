"""Channel order per customer: as written, cheapest reachable first, or the channels this
customer actually answers (conversions attributed to a channel, then clicks, then opens,
falling back to cost). Resolved once at enrollment and stored with it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.model import CampaignSpec, Step
from omnicascade.campaign.variants import variant_order, variant_steps
from omnicascade.cascade.decision import Recipient, reachable
from omnicascade.clock import now_utc
from omnicascade.customers.consent import load_suppressed
from omnicascade.customers.model import load_customers
from omnicascade.db.models import ConversionEvent, Delivery, DeliveryEvent
from omnicascade.db.query import chunks
from omnicascade.vocabulary import CLICK_EVENTS, OPEN_EVENTS, DeliveryStatus

Score = tuple[int, int, int]  # (conversions attributed, clicks, opens)
OPENS = sorted(OPEN_EVENTS)  # clicks, opens and read receipts (never a machine's open)


def history(ids: Sequence[str], *, session: Session) -> dict[str, dict[str, Score]]:
    """Per customer and channel: conversions credited to that channel (last message sent
    before the conversion), clicks and opens reported by providers."""
    conv: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    engaged: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for chunk in chunks(ids):
        sends: dict[str, list[tuple[datetime | None, str]]] = defaultdict(list)
        for cid, channel, at in session.execute(
                select(Delivery.customer_id, Delivery.channel, Delivery.sent_at).where(
                    Delivery.customer_id.in_(chunk), Delivery.status == DeliveryStatus.SENT)
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
                .where(Delivery.customer_id.in_(chunk), DeliveryEvent.event.in_(OPENS))
                .group_by(Delivery.customer_id, Delivery.channel, DeliveryEvent.event)):
            engaged[cid][channel][0 if event in CLICK_EVENTS else 1] += n  # read = open
    out: dict[str, dict[str, Score]] = {}
    for cid in set(conv) | set(engaged):
        channels = set(conv.get(cid, {})) | set(engaged.get(cid, {}))
        out[cid] = {ch: (conv[cid][ch], engaged[cid][ch][0], engaged[cid][ch][1])
                    for ch in channels}
    return out


def resolve(steps: Sequence[Step], strategy: str, reachable: set[str],
            scores: dict[str, Score], costs: dict[str, Decimal]) -> list[int]:
    """Indices of `steps` in the order to try them. Unreachable steps go last (they will
    be skipped at once, so they must not delay a channel that can reach the customer)."""
    idx = list(range(len(steps)))
    if strategy == "cost":
        return sorted(idx, key=lambda i: (steps[i].channel not in reachable,
                                          costs.get(steps[i].channel, Decimal(0)), i))
    if strategy == "preference":
        def key(i: int) -> tuple[bool, int, int, int, Decimal, int]:
            c, k, o = scores.get(steps[i].channel, (0, 0, 0))
            return (steps[i].channel not in reachable, -c, -k, -o,
                    costs.get(steps[i].channel, Decimal(0)), i)
        return sorted(idx, key=key)
    return idx


def resolve_orders(spec: CampaignSpec, ids: Sequence[str], variants: dict[str, str],
                   costs: dict[str, Decimal], *, session: Session
                   ) -> dict[str, tuple[str, list[int]]]:
    """(strategy, step order) for each customer: as written, or resolved by cost or by the
    customer's own history, reachable channels first."""
    strategies = {c: variant_order(spec, variants[c]) for c in ids}
    out = {c: (str(strategies[c]), list(range(len(variant_steps(spec, variants[c])))))
           for c in ids}
    need = [c for c in ids if strategies[c] != "as_written"]
    if not need:
        return out
    customers = load_customers(need, session=session)
    suppressed = load_suppressed(customers.values(), session=session)
    prefer = [c for c in need if strategies[c] == "preference"]
    scores = history(prefer, session=session) if prefer else {}
    now = now_utc(aware=True)
    for c in need:
        reach = reachable(Recipient.of(customers.get(c), suppressed), now)
        out[c] = (strategies[c], resolve(variant_steps(spec, variants[c]), strategies[c],
                                         reach, scores.get(c, {}), costs))
    return out
