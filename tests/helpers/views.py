"""A run written straight into the tables, timed relative to now, for the views (`runs
list|show`, `customers show`, `outbox`) and their read API twins: two variants, a promo
code, a converted customer waiting for the review request, a send deferred by quiet hours,
a follow-up already sent, and a conversion for a customer nobody knows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, OutboxMessage, Run
from omnicascade.db.session import session_scope
from tests.helpers.cascades import add_customers
from tests.helpers.reports import EXPERIMENT_YAML, conversion, launch, member, send

BERLIN = ZoneInfo("Europe/Berlin")
VIEWS_YAML = EXPERIMENT_YAML.replace(
    "conversion: {events: [order_placed]}\n",
    "conversion: {events: [order_placed]}\n"
    "promo: {pattern: \"CART-{random:6}\", discount: \"30%\"}\n"
    "timezone: Europe/Berlin\n"
    "quiet_hours: {start: \"21:00\", end: \"09:00\"}\n").replace("delay: 1d", "delay: 3d")
ADA_CODE = "CART-ADA234"


def next_nine_berlin(after: datetime) -> datetime:
    """The first 09:00 in Berlin after `after` (naive UTC), as naive UTC."""
    local = after.replace(tzinfo=ZoneInfo("UTC")).astimezone(BERLIN)
    nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
    if nine <= local:
        nine = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    return nine.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@dataclass
class Seeded:
    run_id: str
    now: datetime


def seed(settings: Settings, folder: Path) -> Seeded:
    """ada (control): email sent 1 h ago, converted 30 min ago, review request due in 3 d;
    bob (sms_first, Berlin by his phone): his SMS deferred by quiet hours to the next 09:00;
    dee (control): converted yesterday, review request sent; eve (control): completed
    without converting; one unmatched conversion."""
    run_id = launch(settings, folder, VIEWS_YAML)
    now = now_utc()
    add_customers(settings, {"id": "ada", "email": "ada@example.com",
                             "timezone": "Europe/Berlin"},
                  {"id": "bob", "phone": "+4915112340001"},
                  {"id": "dee", "email": "dee@example.com"},
                  {"id": "eve", "email": "eve@example.com"})
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        run.created_at = now - timedelta(days=2)
        ada = member(s, run_id, "ada", "control", status="active", at=now - timedelta(hours=2))
        ada.promo_code = ADA_CODE
        send(s, ada, 0, "email", now - timedelta(hours=1))
        conversion(s, ada, now - timedelta(minutes=30), 40.0)
        ada.status = "active"  # the workflow ends it once the review request is out
        bob = member(s, run_id, "bob", "sms_first", status="active", at=now - timedelta(hours=3))
        d = send(s, bob, 0, "sms", now - timedelta(hours=3), status="deferred",
                 reason="quiet_hours")
        d.deferred_until = next_nine_berlin(now)
        dee = member(s, run_id, "dee", "control", status="converted",
                     at=now - timedelta(days=1, hours=5))
        send(s, dee, 0, "email", now - timedelta(days=1, hours=5))
        conversion(s, dee, now - timedelta(days=1, hours=4), 60.0)
        review = send(s, dee, 0, "email", now - timedelta(hours=1), phase="follow_up")
        s.add(OutboxMessage(delivery_id=review.id, customer_id="dee", run_id=run_id,
                            step=review.step_key, channel="email", to_address="dee@example.com",
                            subject="How was it?", body="Review please",
                            sent_at=now - timedelta(hours=1)))
        s.add(OutboxMessage(delivery_id="enr_ada:0", customer_id="ada", run_id=run_id,
                            step="0", channel="email", to_address="ada@example.com",
                            subject="Your cart", body="…", sent_at=now - timedelta(hours=1)))
        eve = member(s, run_id, "eve", "control", at=now - timedelta(days=2))  # completed
        send(s, eve, 0, "email", now - timedelta(days=2))
        s.add(ConversionEvent(event_id="ghost-1", type="order_placed", customer_id="nobody",
                              occurred_at=now - timedelta(minutes=5),
                              recorded_at=now - timedelta(minutes=5), matched=False))
    return Seeded(run_id, now)
