"""Everything stored about one person (GDPR Art. 15/20): `omnicascade customers export` and
`GET /v1/customers/{id}/export`, one JSON document in the shape README "Data protection →
Export" documents. Each table of db/personal.py PERSON_TABLES has its section (SECTIONS):
a table that holds a person and is not exported fails tests/db/test_personal.py.

Money is exact (decimal strings), times ISO 8601 UTC. A Telegram link's one-time token is
left out (a credential, not data about the person); everything else is as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.customers.model import ADDRESS_FIELD, customer_dict
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    Delivery,
    DeliveryEvent,
    Enrollment,
    InboundEvent,
    OutboxMessage,
    Run,
    Suppression,
    TelegramLink,
)
from omnicascade.db.personal import INBOUND_CHANNELS
from omnicascade.errors import NotFound
from omnicascade.reports.format import iso

SCHEMA_VERSION = 1
# PERSON_TABLES table → the export's section that holds its rows.
SECTIONS = {"customers": "profile", "enrollments": "enrollments", "deliveries": "messages",
            "outbox_messages": "messages", "delivery_events": "feedback",
            "conversions": "conversions", "events": "events",
            "telegram_links": "telegram_links", "suppressions": "suppressions"}
# Provider feedback that records a consent given or withdrawn (consents.history).
CONSENT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport", "stop", "start",
                            "inbound_stop", "inbound_start"})


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _addresses(customer: Customer | None, deliveries: Iterable[Delivery]
               ) -> set[tuple[str, str]]:
    """Every (channel, address) the person has, or was messaged at."""
    found = {(d.channel, d.to_address) for d in deliveries if d.to_address}
    if customer is not None:
        found |= {(ch, v) for ch, field in ADDRESS_FIELD.items()
                  if (v := getattr(customer, field, None))}
    return found


def _message(d: Delivery, m: OutboxMessage | None) -> dict[str, Any]:
    rendered = None if m is None else {
        "to": m.to_address, "subject": m.subject, "title": m.title, "body": m.body,
        "html": m.html, "sent_at": iso(m.sent_at), "body_pruned": m.pruned_at is not None,
        "pruned_at": iso(m.pruned_at)}
    return {"delivery_id": d.id, "enrollment_id": d.enrollment_id, "run_id": d.run_id,
            "step": d.step_key, "phase": d.phase, "channel": d.channel,
            "template": d.template, "status": d.status, "reason": d.reason,
            "provider": d.provider, "provider_message_id": d.provider_message_id,
            "to": d.to_address, "attempts": d.attempts, "segments": d.segments,
            "cost": _money(d.cost), "cost_currency": d.cost_currency,
            "created_at": iso(d.created_at), "sent_at": iso(d.sent_at),
            "deferred_until": iso(d.deferred_until), "rendered": rendered}


def person_export(customer_id: str, *, session: Session) -> dict[str, Any]:
    """The person's document; NotFound when no table holds this customer id."""
    customer = session.get(Customer, customer_id)
    enrollments = list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id).order_by(Enrollment.enrolled_at, Enrollment.id)))
    deliveries = list(session.scalars(select(Delivery).where(
        Delivery.customer_id == customer_id).order_by(Delivery.created_at, Delivery.id)))
    outbox = list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.customer_id == customer_id).order_by(OutboxMessage.sent_at,
                                                           OutboxMessage.id)))
    conversions = list(session.scalars(select(ConversionEvent).where(
        ConversionEvent.customer_id == customer_id).order_by(ConversionEvent.occurred_at,
                                                             ConversionEvent.id)))
    events = list(session.scalars(select(InboundEvent).where(
        InboundEvent.customer_id == customer_id).order_by(InboundEvent.occurred_at,
                                                          InboundEvent.id)))
    addresses = _addresses(customer, deliveries)
    chats = [a for ch, a in addresses if ch == "telegram"]
    links = list(session.scalars(select(TelegramLink).where(or_(
        TelegramLink.customer_id == customer_id, TelegramLink.chat_id.in_(chats)))
        .order_by(TelegramLink.created_at)))
    if customer is None and not (enrollments or deliveries or outbox or conversions
                                 or events or links):
        raise NotFound(f"no customer {customer_id!r}")
    inbound = [f"{ch}:{a}" for ch, a in addresses if ch in INBOUND_CHANNELS]
    feedback = list(session.scalars(select(DeliveryEvent).where(or_(
        DeliveryEvent.delivery_id.in_([d.id for d in deliveries]),
        DeliveryEvent.address.in_(inbound))).order_by(DeliveryEvent.occurred_at,
                                                      DeliveryEvent.id)))
    suppressions = [s for s in session.scalars(select(Suppression).where(
        Suppression.address.in_(sorted({a for _, a in addresses})))
        .order_by(Suppression.created_at, Suppression.id)) if (s.channel, s.address)
        in addresses]
    runs = {r.id: r for r in session.scalars(select(Run).where(
        Run.id.in_({e.run_id for e in enrollments})))}
    codes = [e.promo_code for e in enrollments if e.promo_code]
    redeemed = set(session.scalars(select(ConversionEvent.promo_code).where(
        ConversionEvent.promo_code.in_(codes)))) if codes else set()
    by_delivery = {m.delivery_id: m for m in outbox}
    delivered = {d.id for d in deliveries}
    return {
        "schema_version": SCHEMA_VERSION, "customer_id": customer_id,
        "exported_at": iso(now_utc()),
        "profile": None if customer is None else {
            **customer_dict(customer), "created_at": iso(customer.created_at),
            "updated_at": iso(customer.updated_at)},
        "consents": {
            "current": dict(customer.consents or {}) if customer is not None else {},
            "history": sorted(
                [{"at": iso(s.created_at), "channel": s.channel, "what": "suppressed",
                  "reason": s.reason, "source": "suppressions"} for s in suppressions]
                + [{"at": iso(f.occurred_at), "channel": (f.address or "").split(":")[0]
                    or None, "what": f.event, "reason": f.provider,
                    "source": "delivery_events"} for f in feedback
                   if f.event in CONSENT_EVENTS], key=lambda h: h["at"] or "")},
        "suppressions": [{"channel": s.channel, "address": s.address, "reason": s.reason,
                          "created_at": iso(s.created_at)} for s in suppressions],
        "enrollments": [{
            "enrollment_id": e.id, "campaign": e.campaign or (
                runs[e.run_id].campaign if e.run_id in runs else None),
            "run_id": e.run_id, "variant": e.variant, "key": e.entry_key,
            "status": e.status, "exit_reason": e.exit_reason, "promo_code": e.promo_code,
            "trigger_event_id": e.trigger_event_id, "trigger_data": e.event_data,
            "match_key": e.match_key, "enrolled_at": iso(e.enrolled_at),
            "started_at": iso(e.started_at), "finished_at": iso(e.finished_at),
            "converted_at": iso(e.converted_at),
            "conversion_event_id": e.conversion_event_id} for e in enrollments],
        # every delivery, with what the outbox rendered for it; then any outbox message
        # whose delivery row is not the person's (none in practice: kept, not lost)
        "messages": [_message(d, by_delivery.get(d.id)) for d in deliveries] + [
            {"delivery_id": m.delivery_id, "run_id": m.run_id, "step": m.step,
             "channel": m.channel, "rendered": {
                 "to": m.to_address, "subject": m.subject, "title": m.title,
                 "body": m.body, "html": m.html, "sent_at": iso(m.sent_at),
                 "body_pruned": m.pruned_at is not None, "pruned_at": iso(m.pruned_at)}}
            for m in outbox if m.delivery_id not in delivered],
        "feedback": [{"delivery_id": f.delivery_id, "provider": f.provider, "event": f.event,
                      "address": f.address, "data": f.data,
                      "occurred_at": iso(f.occurred_at), "recorded_at": iso(f.recorded_at)}
                     for f in feedback],
        "events": [{"event_id": v.event_id, "type": v.type, "data": v.data,
                    "occurred_at": iso(v.occurred_at), "received_at": iso(v.received_at),
                    "processed_at": iso(v.processed_at), "enrolled": v.enrolled,
                    "outcome": v.outcome} for v in events],
        "conversions": [{"event_id": c.event_id, "type": c.type, "promo_code": c.promo_code,
                         "order_id": c.order_id, "amount": _money(c.amount),
                         "currency": c.currency, "data": c.data,
                         "occurred_at": iso(c.occurred_at), "recorded_at": iso(c.recorded_at),
                         "matched": c.matched} for c in conversions],
        "promo_codes": [{"code": e.promo_code, "campaign": e.campaign, "run_id": e.run_id,
                         "enrollment_id": e.id, "redeemed": e.promo_code in redeemed}
                        for e in enrollments if e.promo_code],
        "telegram_links": [{"chat_id": t.chat_id, "created_at": iso(t.created_at),
                            "used_at": iso(t.used_at)} for t in links],
    }
