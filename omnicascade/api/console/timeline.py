"""A customer's page: `customers show` (reports/customers.py) plus what a marketer needs to
see beside it — each message's rendered text (the outbox), the provider's delivery and
engagement events, the suppressions of each address — as one timeline in the customer's
time zone (a rehearsal's times on its campaign clock, marked ×N), as the CLI shows it."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from omnicascade.clock import LIVE, RunClock, now_utc
from omnicascade.customers.model import address_for, consented
from omnicascade.db.models import Customer, Delivery, DeliveryEvent, OutboxMessage, Suppression
from omnicascade.reports.customers import customer_show
from omnicascade.reports.when import aware, clock_from, local, parse_iso, relative, zone_of
from omnicascade.vocabulary import CHANNELS, reason_label


def find(query: str, *, session: Session) -> list[str]:
    """Customer ids whose id, email (any case) or phone is exactly `query`."""
    q = query.strip()
    if not q:
        return []
    return list(session.scalars(select(Customer.id).where(or_(
        Customer.id == q, func.lower(Customer.email) == q.lower(), Customer.phone == q))
        .order_by(Customer.id).limit(50)))


def channels(customer: Customer, *, session: Session) -> list[dict[str, Any]]:
    """Each channel: the address, consent, and its suppression (reason, since) if any."""
    out = []
    for channel in CHANNELS:
        address = address_for(customer, channel)
        found = session.scalar(select(Suppression).where(
            Suppression.channel == channel, Suppression.address == address)) if address else None
        out.append({"channel": channel, "address": address,
                    "consent": consented(customer.consents, channel),
                    "suppressed": found.reason if found else None,
                    "suppressed_at": found.created_at if found else None})
    return out


def customer_page(customer_id: str, *, session: Session) -> dict[str, Any]:
    data = customer_show(customer_id, session=session)
    customer = session.get(Customer, customer_id)
    assert customer is not None  # customer_show raised NotFound otherwise
    # the same rows in the same order as customer_show's messages
    ids = list(session.scalars(select(Delivery.id).where(Delivery.customer_id == customer_id)
                               .order_by(Delivery.created_at, Delivery.id)))
    outbox = {m.delivery_id: m for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.customer_id == customer_id))}
    events: dict[str, list[DeliveryEvent]] = defaultdict(list)
    for ev in session.scalars(select(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(ids))
                              .order_by(DeliveryEvent.occurred_at)):
        events[ev.delivery_id or ""].append(ev)
    by_channel = channels(customer, session=session)
    return {**data, "channels": by_channel,
            "timeline": timeline(data, ids, outbox, events, by_channel)}


def timeline(data: dict[str, Any], ids: list[str], outbox: dict[str, OutboxMessage],
             events: dict[str, list[DeliveryEvent]],
             by_channel: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fact, oldest first: `{at, ago, kind, what, detail, message?}`."""
    zone = zone_of(data["customer"].get("zone"))
    now = now_utc()
    clocks: dict[str, RunClock] = {e["run_id"]: clock_from(e.get("rehearsal")) or LIVE
                                   for e in data["enrollments"]}
    rows: list[dict[str, Any]] = []

    def add(at: str | datetime | None, kind: str, what: str, detail: str, run_id: str = "",
            **extra: Any) -> None:
        wall = parse_iso(at) if isinstance(at, str) or at is None else aware(at)
        if wall is None:
            return
        clock = clocks.get(run_id, LIVE)
        shown = clock.campaign(wall)
        rows.append({"order": wall, "at": local(shown, zone, seconds=True),
                     "mark": f"×{clock.scale:g}" if clock.rehearsal else "",
                     "ago": relative(shown, clock.campaign(aware(now))), "kind": kind,
                     "what": what, "detail": detail, **extra})

    for e in data["enrollments"]:
        add(e["enrolled_at"], "enrolled", f"entered {e['campaign']}",
            f"run {e['run_id']}, variant {e['variant']}"
            + (f", promo {e['promo_code']}" if e["promo_code"] else ""), e["run_id"],
            status=e["status_label"])
        if e["status"] in ("stopped", "exited"):
            add(e["finished_at"], e["status"], f"{e['status']}: {e['campaign']}",
                reason_label(e["exit_reason"]) or "no reason recorded", e["run_id"])
    for delivery_id, m in zip(ids, data["messages"], strict=False):
        sent = outbox.get(delivery_id)
        add(m["at"], "message", f"{m['channel']} · {m['label']}",
            f"{m['template']}: {m['status_label']}", m["run_id"],
            message={"id": sent.id, "subject": sent.subject or sent.title, "body": sent.body,
                     "html": bool(sent.html), "to": sent.to_address} if sent else None)
        for ev in events.get(delivery_id, []):
            add(ev.occurred_at, "engagement", f"{ev.event} · {m['channel']} {m['label']}",
                f"reported by {ev.provider}", m["run_id"])
    converted = {e.get("conversion_event_id"): e["run_id"] for e in data["enrollments"]}
    for c in data["conversions"]:
        amount = f", {c['amount']:,.2f} {c['currency'] or ''}" if c["amount"] is not None else ""
        add(c["occurred_at"], "conversion", f"converted: {c['type']}",
            f"event {c['event_id']}{amount}"
            + (f", promo {c['promo_code']}" if c["promo_code"] else ""),
            converted.get(c["event_id"], ""))
    for ch in by_channel:
        if ch["suppressed"]:
            add(ch["suppressed_at"], "suppression", f"{ch['channel']} suppressed",
                f"{reason_label(ch['suppressed']) or ch['suppressed']}: no campaign "
                f"messages this address again")
    rows.sort(key=lambda r: r["order"])
    return rows

