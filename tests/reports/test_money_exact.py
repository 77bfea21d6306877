"""issue 24: money is exact end to end. Costs are priced once at send (Settings.price_of),
stored as Numeric with their currency, and a report adds them up in Decimal; a conversion
amount the shop sends is the amount stored and reported, to the cent, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.db.models import ConversionEvent, Delivery, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from omnicascade.reports.data import load_run
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.reports import T0, launch, member, send

pytestmark = pytest.mark.db

ONE_STEP = """\
campaign: exact-money
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms}
"""


def test_a_thousand_small_costs_add_up_exactly(settings, tmp_path):
    """1000 × 0.001 + 13 × 0.05 is 1.65, not 1.6500000000000001 (floats)."""
    email, sms = settings.price_of("email"), settings.price_of("sms")
    assert sum([email] * 1000 + [sms] * 13, Decimal(0)) == Decimal("1.65")
    rid = launch(settings, tmp_path / "campaign", ONE_STEP)
    with session_scope(settings.db_url) as s:
        for i in range(100):
            e = member(s, rid, f"u{i}", "default")
            for step in range(10):
                send(s, e, step, "email", T0, cost=email)  # as the ledger priced it
            if i < 13:
                send(s, e, 10, "sms", T0, cost=sms)
    with session_scope(settings.db_url) as s:
        data = load_run(s.get(Run, rid), session=s, settings=settings)
        report = build_report(rid, session=s, settings=settings)
    total = sum((m.cost for m in data.members), Decimal(0))
    assert isinstance(total, Decimal) and total == Decimal("1.65")
    assert report["economics"]["cost"] == 1.65 and repr(report["economics"]["cost"]) == "1.65"
    assert report["economics"]["by_channel"]["email"]["cost"] == 1.0


async def test_an_amount_is_exact_from_the_api_to_the_database_to_the_report(settings,
                                                                           tmp_path):
    rid = launch(settings, tmp_path / "campaign", ONE_STEP)
    with session_scope(settings.db_url) as s:
        for who in ("u1", "u2", "u3"):
            send(s, member(s, rid, who, "default"), 0, "email", T0)
    signer = FreshSigner()
    async with asgi_client(create_app(settings)) as http:
        for who, amount in (("u1", 19.99), ("u2", 0.1), ("u3", 0.2)):
            body = json.dumps({"event_id": f"order-{who}", "type": "order_placed",
                               "customer_id": who, "amount": amount, "currency": "USD",
                               "occurred_at": "2025-03-03T10:00:00Z"}).encode()
            r = await http.post("/v1/conversions", content=body, headers={
                HEADER: signer(SECRET, "POST", "/v1/conversions", body),
                "content-type": "application/json"})
            assert r.status_code == 202, r.text
    with session_scope(settings.db_url) as s:
        stored = {c: a for c, a in s.execute(select(ConversionEvent.customer_id,
                                                        ConversionEvent.amount))}
        data = load_run(s.get(Run, rid), session=s, settings=settings)
        report = build_report(rid, session=s, settings=settings)
    assert stored == {"u1": Decimal("19.99"), "u2": Decimal("0.1"), "u3": Decimal("0.2")}
    assert all(isinstance(a, Decimal) for a in stored.values())
    assert {m.customer_id: m.amount for m in data.members} == stored
    assert sum((m.amount or 0 for m in data.members), Decimal(0)) == Decimal("20.29")
    v = report["variants"]["default"]
    assert (v["revenue"], v["revenue_currency"], v["revenue_by_currency"]) == \
        (20.29, "USD", {"USD": 20.29})


async def test_every_message_that_went_out_stores_its_cost_with_its_currency(settings,
                                                                            campaign_file):
    from tests.helpers.campaigns import FULL
    settings = settings.model_copy(update={"cost_currency": "EUR", "cost_sms": "0.0725"})
    add_customers(settings, {"id": "c1", **FULL}, {"id": "c2", **FULL, "consents": {
        "sms": False}})
    _, enrollments = await enroll(None, settings, campaign_file, ["c1", "c2"],  # type: ignore
                                  start=False)
    for e in enrollments:
        for step in (StepPlan("0", 0, "email", "t_email", 86400),
                     StepPlan("1", 1, "sms", "t_sms", 86400)):
            await deliver_now(settings, e.id, step)
    with session_scope(settings.db_url) as s:
        rows = {(d.customer_id, d.channel): (d.status, d.cost, d.cost_currency)
                for d in s.scalars(select(Delivery))}
    assert rows == {("c1", "email"): ("sent", Decimal("0.001"), "EUR"),
                    ("c1", "sms"): ("sent", Decimal("0.0725"), "EUR"),
                    ("c2", "email"): ("sent", Decimal("0.001"), "EUR"),
                    ("c2", "sms"): ("skipped", None, None)}  # nothing spent, no currency
    assert all(isinstance(c, Decimal) for _, c, _ in rows.values() if c is not None)


def test_costs_stored_in_another_currency_than_configured_are_named(settings, tmp_path):
    rid = launch(settings, tmp_path / "campaign", ONE_STEP)
    with session_scope(settings.db_url) as s:
        e = member(s, rid, "u1", "default")
        send(s, e, 0, "email", T0).cost_currency = "USD"
        send(s, e, 1, "sms", T0).cost_currency = "GBP"  # sent before the setting changed
    with session_scope(settings.db_url) as s:
        report = build_report(rid, session=s, settings=settings)
    assert report["cost_currency"] == "USD"
    assert [n for n in report["notes"] if "stored in" in n] == [
        "some message costs were stored in GBP, and OMNICASCADE_COST_CURRENCY is now USD: "
        "they are added up as if in USD"]
