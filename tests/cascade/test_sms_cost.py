"""SMS segments and cost (issue 27.3): one body (Smart Encoding's normalisation) is counted
per GSM 03.38, sent, stored with its segments and priced by Settings.price_of, so a
rehearsal's report costs exactly what its previews said."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.testing import ActivityEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.audience import preview_audience
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.preview import preview
from omnicascade.channels.sms_segments import segments, sms_body
from omnicascade.customers.model import CustomerIn
from omnicascade.db.models import Delivery
from omnicascade.db.session import session_scope
from omnicascade.reports.build import compose, load
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.cascade.test_rehearsal import Refusing
from tests.helpers.campaigns import TEMPLATES, write_campaign
from tests.helpers.cascades import add_customers, outbox


@pytest.mark.parametrize(("body", "count"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2),                      # the extension table counts double
    ("a" * 152 + "€" + "a" * 152, 3),                  # an escape pair is never split
    ("ç" * 70, 1), ("ç" * 71, 2), ("ç" * 134, 2), ("ç" * 135, 3),  # UCS-2
    ("x" * 66 + "😀" + "x" * 66, 3),                   # a surrogate pair is never split
])
def test_segments_follow_gsm_03_38(body: str, count: int) -> None:
    assert segments(body) == count


def test_smart_encoding_makes_typography_gsm() -> None:
    text = "Hallo\u00a0Jürgen: 129,50\u00a0€ \u2013 \u201edanke\u201c \u2018ok\u2019\u2026"
    assert sms_body(text) == "Hallo Jürgen: 129,50 € - \"danke\" 'ok'..."
    assert segments(text) == 1 and segments(sms_body(text)) == 1  # 160 vs 70 per segment
    spaced = ("x" * 60 + "\u00a0") * 2
    assert segments(spaced) == 2 and segments(sms_body(spaced)) == 1
    assert sms_body("Zoë – ça va?") == "Zoë - ça va?"  # letters are never changed


YAML = """\
campaign: {name}
trigger: {{event: cart_abandoned, example: {{total: 129.5, currency: EUR}}}}
conversion: {{events: [order_placed]}}
steps:
  - {{channel: email, template: t_email, wait: 24h}}
  - {{channel: sms,   template: t_sms,   wait: 24h}}
  - {{channel: whatsapp, template: t_wa}}
"""
SMS = ("Hallo {{ customer.first_name }}, Ihr Warenkorb über "
       "{{ event.total | money(event.currency) }} wartet – noch 24 Stunden reserviert.")
PEOPLE = [  # German and English bodies fit GSM-7; "Françoise" (ç) is UCS-2: 2 segments
    {"id": "de1", "first_name": "Jürgen", "locale": "de-DE"},
    {"id": "fr1", "first_name": "Françoise", "locale": "fr-FR"},
    {"id": "fr2", "first_name": "Zoé", "locale": "fr-FR"},
    {"id": "en1", "first_name": "Anna", "locale": "en-US"},
]


@pytest.mark.asyncio
@pytest.mark.db
async def test_a_rehearsals_report_costs_the_sum_of_its_previews(settings, tmp_path):
    add_customers(settings, *[{"id": p["id"], "locale": p["locale"],
                               "attributes": {"first_name": p["first_name"]},
                               "email": f"{p['id']}@example.com",
                               "phone": f"+49151123456{i:02d}", "consents": {"whatsapp": True}}
                              for i, p in enumerate(PEOPLE)])
    folder = write_campaign(tmp_path / "c", YAML.format(name="sms-cost"),
                            {**TEMPLATES, "t_sms.txt.j2": SMS, "t_wa.txt.j2": "free-form"})
    loaded = load_campaign(folder)
    event = {"total": 129.5, "currency": "EUR"}
    with session_scope(settings.db_url) as s:
        previews = {p["id"]: preview(loaded, p["id"], session=s, settings=settings, event=event)
                    for p in PEOPLE}
        audience = preview_audience(loaded, [CustomerIn(id=p["id"]) for p in PEOPLE],
                                    session=s, settings=settings)
    sms = {cid: next(m for m in items if m["channel"] == "sms")
           for cid, items in previews.items()}
    assert {cid: m["segments"] for cid, m in sms.items()} == \
        {"de1": 1, "fr1": 2, "fr2": 1, "en1": 1}
    assert "\u00a0" not in sms["de1"]["body"] and "129,50 €" in sms["de1"]["body"]
    # free-form WhatsApp outside the 24 h window cannot be sent: not priced, not reachable
    wa = [m for items in previews.values() for m in items if m["channel"] == "whatsapp"]
    assert all(m["skipped"] == "window_closed" and "cost" not in m for m in wa)
    assert audience["reachable"]["whatsapp"] == 0
    assert audience["messages_per_1000"]["whatsapp"] == 0
    planned = sum((Decimal(str(m["cost"])) for items in previews.values() for m in items
                   if m["assigned"] and "cost" in m), Decimal(0))
    assert all(m["currency"] == "USD" for items in previews.values() for m in items
               if "cost" in m)
    assert planned == 5 * settings.cost_sms + 4 * settings.cost_email
    assert Decimal(str(audience["cost_per_1000"])) * len(PEOPLE) / 1000 == planned
    assert audience["currency"] == "USD"

    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s, time_scale=3600)
        enrolled = enroll_customers(run, [p["id"] for p in PEOPLE], session=s,
                                    event_data=event)
        ids, run_id = {e.customer_id: e.id for e in enrolled}, run.id
    acts = DeliverActivities(settings, {c: Refusing() for c in CHANNELS})  # type: ignore[misc]
    for enrollment_id in ids.values():
        for plan in (StepPlan("0", 0, "email", "t_email", 86400),
                     StepPlan("1", 1, "sms", "t_sms", 86400)):
            result = await ActivityEnvironment().run(acts.deliver_step,
                                                     DeliverInput(enrollment_id, plan))
            assert result.status == "sent"
    bodies = {m.customer_id: m.body for m in outbox(settings) if m.channel == "sms"}
    assert bodies == {cid: m["body"] for cid, m in sms.items()}  # the body previewed is sent
    with session_scope(settings.db_url) as s:
        stored = {d.customer_id: d.segments for d in s.query(Delivery)
                  .filter(Delivery.run_id == run_id, Delivery.channel == "sms")}
        report = compose(load(run_id, session=s, settings=settings), "running")
    assert stored == {cid: m["segments"] for cid, m in sms.items()}
    assert Decimal(str(report["economics"]["cost"])) == planned


@pytest.mark.asyncio
@pytest.mark.db
async def test_twilio_gets_the_normalised_body_and_the_ledger_its_segments(settings, tmp_path):
    """A German SMS with a money amount ("129,50\\xa0€") goes to Twilio as GSM text; when
    Twilio's answer bills no segment count, the ledger stores ours and prices it."""
    from omnicascade.channels.twilio_sms import TwilioChannel, TwilioSettings
    from tests.helpers.fake_provider import FakeProvider, Reply
    add_customers(settings, {"id": "de1", "locale": "de-DE", "phone": "+4915112345678",
                             "attributes": {"first_name": "Jürgen"}})
    loaded = load_campaign(write_campaign(tmp_path / "c", YAML.format(name="sms-live"),
                                          {**TEMPLATES, "t_sms.txt.j2": SMS, "t_wa.txt.j2": "x"}))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s)
        [e] = enroll_customers(run, ["de1"], session=s, event_data={"total": 129.5,
                                                                     "currency": "EUR"})
        enrollment_id = e.id
    with FakeProvider(Reply(201, {"sid": "SM" + "3" * 32, "num_segments": None})) as fake:
        twilio = TwilioChannel(TwilioSettings(account_sid="AC" + "0" * 32, rate=0,
                                              auth_token="token-123456789",
                                              from_number="+15005550006", api_base_url=fake.url))
        acts = DeliverActivities(settings, {c: twilio for c in CHANNELS})
        result = await ActivityEnvironment().run(
            acts.deliver_step, DeliverInput(enrollment_id, StepPlan("1", 1, "sms", "t_sms", 0)))
    assert result.status == "sent"
    body = fake.seen[0].form()["Body"]
    assert "129,50 € wartet - noch" in body and segments(body) == 1
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, f"{enrollment_id}:1")
        assert row is not None and (row.segments, row.cost) == (1, settings.cost_sms)
