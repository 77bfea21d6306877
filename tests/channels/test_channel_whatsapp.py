"""WhatsApp through Twilio: the real `twilio` SDK against a local fake of the Messages API.
An approved template goes out as ContentSid + ContentVariables (rendered per customer); a
free-form body only inside the 24 h window; `campaign validate` says which a step uses and
places a bad variable at file:line:col; no consent → no_consent."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.problems import SpecError
from omnicascade.cascade.feedback import record_feedback
from omnicascade.cascade.preview import preview
from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.registry import build_channel
from omnicascade.channels.twilio_sms import TwilioSettings
from omnicascade.channels.twilio_webhook import twilio_item
from omnicascade.channels.twilio_whatsapp import WhatsAppChannel, WhatsAppSettings
from omnicascade.clock import now_utc
from omnicascade.db.models import Delivery, DeliveryEvent
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from omnicascade.reports.build import build_report
from omnicascade.vocabulary import CHANNELS, reason_label
from omnicascade.workflows.types import StepPlan
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import FakeProvider, Reply
from tests.helpers.whatsapp import CONTENT_SID, WA_CUSTOMER, WA_TEMPLATES, write_wa_campaign

SID, TOKEN = "AC" + "0" * 32, "twilio-auth-token-0123456789"
PHONE = WA_CUSTOMER["phone"]
SENDER = "+15005550006"
CREATED = Reply(201, {"sid": "SM" + "7" * 32, "status": "queued", "num_segments": "1"})
MSG = Message(delivery_id="enr_wa:0", channel="whatsapp", to=PHONE, body="Hi Ana",
              customer_id="c1", run_id="run_1", step="0", campaign="wa",
              data={"content_sid": CONTENT_SID,
                    "content_variables": {"1": "Ana", "2": "WA-ÄB12"}})
CALLBACK = "https://hooks.shop.example/webhooks/twilio?delivery=enr_wa%3A0"


def channel(url: str, **kw: object) -> WhatsAppChannel:
    account = TwilioSettings(account_sid=SID, auth_token=TOKEN, api_base_url=url)
    config = WhatsAppSettings(**{"from_number": SENDER, "rate": 0, **kw})  # type: ignore[arg-type]
    return WhatsAppChannel(account, config, callback_base="https://hooks.shop.example")


def error(status: int, code: int) -> Reply:
    return Reply(status, {"code": code, "message": "error", "status": status})


async def test_an_approved_template_goes_out_as_content_sid_and_variables():
    with FakeProvider(CREATED) as fake:
        result = await channel(fake.url).send(MSG)
    assert (result.provider, result.message_id) == ("twilio", "SM" + "7" * 32)
    [req] = fake.seen
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    form = req.form()
    assert form == {"To": f"whatsapp:{PHONE}", "From": f"whatsapp:{SENDER}",
                    "ContentSid": CONTENT_SID, "ContentVariables": form["ContentVariables"],
                    "StatusCallback": CALLBACK}
    assert json.loads(form["ContentVariables"]) == {"1": "Ana", "2": "WA-ÄB12"}


async def test_a_free_form_body_only_inside_the_window():
    inside = Message(**{**MSG.__dict__, "data": {"window_open": True}})
    outside = Message(**{**MSG.__dict__, "data": {}})
    with FakeProvider(CREATED) as fake:
        wa = channel(fake.url, from_number=None, messaging_service_sid="MG" + "2" * 32)
        await wa.send(inside)
        with pytest.raises(PermanentSendError, match="24 h customer-service window"):
            await wa.send(outside)
    [req] = fake.seen  # the closed window never reached Twilio
    assert req.form() == {"To": f"whatsapp:{PHONE}", "Body": "Hi Ana",
                          "MessagingServiceSid": "MG" + "2" * 32, "StatusCallback": CALLBACK}


@pytest.mark.parametrize(("reply", "kind", "suppress"), [
    (error(400, 63016), PermanentSendError, False),
    (error(400, 63003), PermanentSendError, False),
    (error(400, 21610), PermanentSendError, True),
    (error(429, 20429), RetryableSendError, False),
    (error(503, 20503), RetryableSendError, False),
])
async def test_answers_are_classified(reply: Reply, kind: type, suppress: bool):
    with FakeProvider(reply) as fake, pytest.raises(kind) as raised:
        await channel(fake.url).send(MSG)
    assert getattr(raised.value, "suppress", False) is suppress


def test_configuration_is_checked_and_the_provider_is_registered(monkeypatch, settings):
    monkeypatch.setenv("OMNICASCADE_TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="OMNICASCADE_TWILIO_WHATSAPP_FROM_NUMBER"):
        build_channel("whatsapp", "twilio", reread(settings))
    monkeypatch.setenv("OMNICASCADE_TWILIO_WHATSAPP_FROM_NUMBER", SENDER)
    assert isinstance(build_channel("whatsapp", "twilio", reread(settings)), WhatsAppChannel)
    production = settings.model_copy(update={"env": "production",
                                             "public_url": "https://shop.example"})
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", "changeme")
    with pytest.raises(ConfigError, match="placeholder"):
        build_channel("whatsapp", "twilio", reread(production))


def test_validate_says_what_each_whatsapp_step_sends(tmp_path: Path):
    loaded = load_campaign(write_wa_campaign(tmp_path / "c"))
    notes = [n for n in loaded.notes if n.startswith("whatsapp")]
    assert notes[0] == "whatsapp template 't_free': free-form body only inside the 24 h " \
        "customer-service window (the step is skipped, window_closed, for a customer who " \
        "has not written to us in 24 h; add a .whatsapp.yaml with an approved content_sid " \
        "to reach everyone)"
    assert notes[1] == f"whatsapp template 't_wa': template {CONTENT_SID} with 2 variables"


@pytest.mark.parametrize(("content", "where", "message"), [
    (f'content_sid: {CONTENT_SID}\nvariables:\n  "1": "{{{{ customer.first_name }}}}"\n'
     '  "2": "{{ promo.cod }} and {{ basket }}"\n', ":4:8", "variable 2: unknown variable "
     "'basket'"),
    ("content_sid: HX123\n", ":1:14", "content_sid must be a Twilio Content SID"),
    (f"content_sid: {CONTENT_SID}\nbody: hi\n", ":2:1", "unknown key 'body'"),
    (f'content_sid: {CONTENT_SID}\nvariables:\n  "1": "{{{{ customer.x "\n', ":3:8",
     "variable 1: template syntax error"),
])
def test_a_bad_content_file_is_refused_at_its_line_and_column(tmp_path: Path, content: str,
                                                              where: str, message: str):
    with pytest.raises(SpecError) as raised:
        load_campaign(write_wa_campaign(tmp_path / "c", **{"t_wa.whatsapp.yaml": content}))
    [problem] = raised.value.problems
    assert str(problem).startswith(f"{tmp_path / 'c' / 'templates' / 't_wa.whatsapp.yaml'}"
                                   f"{where}: {message}"), str(problem)


def _activities(settings, url: str) -> DeliverActivities:
    outbox = OutboxChannel(settings.db_url)
    return DeliverActivities(settings, {**{c: outbox for c in CHANNELS},
                                        "whatsapp": channel(url)})


def _delivery(settings, delivery_id: str) -> tuple[str, str | None, float | None]:
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, delivery_id)
        assert row is not None
        return row.status, row.reason, row.cost


@pytest.mark.db
async def test_a_whatsapp_step_sends_the_rendered_template_and_costs_what_is_configured(
        settings, tmp_path: Path):
    settings = settings.model_copy(update={"cost_whatsapp": 0.0125})
    add_customers(settings, WA_CUSTOMER, {**WA_CUSTOMER, "id": "c2", "phone": "+4915112345679",
                                          "consents": None})
    _, [e1, e2] = await enroll(None, settings, write_wa_campaign(tmp_path / "c"),  # type: ignore
                               ["c1", "c2"], start=False)
    step = StepPlan("0", 0, "whatsapp", "t_wa", 86400)
    with FakeProvider(CREATED) as fake:
        assert (await deliver_now(settings, e1.id, step, _activities(settings, fake.url))
                ).status == "sent"
        skipped = await deliver_now(settings, e2.id, step, _activities(settings, fake.url))
    assert (skipped.status, skipped.reason) == ("skipped", "no_consent")  # opt-in only
    [req] = fake.seen
    assert json.loads(req.form()["ContentVariables"]) == {"1": "Ana", "2": e1.promo_code}
    assert req.form()["ContentSid"] == CONTENT_SID and "Body" not in req.form()
    assert _delivery(settings, f"{e1.id}:0") == ("sent", None, Decimal("0.0125"))


@pytest.mark.db
async def test_free_form_is_skipped_outside_the_window_and_goes_out_inside_it(settings,
                                                                            tmp_path):
    """The window is a skip reason of the one send decision (`window_closed`), not a
    template failure: reports count it with the other skips, and preview sees it too."""
    writer = "+4915112345670"
    add_customers(settings, WA_CUSTOMER, {**WA_CUSTOMER, "id": "c3", "phone": writer})
    # c3 writes to us on WhatsApp: their window is open for 24 h; c1's is not
    with session_scope(settings.db_url) as s:
        record_feedback([twilio_item({"MessageSid": "SMin9", "SmsStatus": "received",
                                      "From": f"whatsapp:{writer}", "Body": "Hello?"},
                                     None)], session=s)
    _, [e1, e3] = await enroll(None, settings, write_wa_campaign(tmp_path / "c"),  # type: ignore
                               ["c1", "c3"], start=False)
    step = StepPlan("2", 2, "whatsapp", "t_free", 0)
    with FakeProvider(CREATED) as fake:
        closed = await deliver_now(settings, e1.id, step, _activities(settings, fake.url))
        assert fake.seen == []
        sent = await deliver_now(settings, e3.id, step, _activities(settings, fake.url))
    assert (closed.status, closed.reason) == ("skipped", "window_closed")
    assert reason_label(closed.reason) == "WhatsApp's 24 h window closed and no approved template"
    assert sent.status == "sent"
    [req] = fake.seen
    assert req.form()["To"] == f"whatsapp:{writer}"
    assert req.form()["Body"] == "Thanks for writing, Ana!" and "ContentSid" not in req.form()
    with session_scope(settings.db_url) as s:
        report = build_report(e1.run_id, session=s, settings=settings)
    [free] = [r for r in report["funnel"]["all"] if r["index"] == 2]
    assert (free["skipped"], free["sent"]) == (1, 1)
    assert free["skipped_by_reason"] == {"window_closed": 1}


FREE_YAML = """\
campaign: wa-free
conversion: {events: [order_placed]}
steps:
  - {channel: whatsapp, template: t_free, wait: 12h}
  - {channel: whatsapp, template: t_free, wait: 1h}
  - {channel: whatsapp, template: t_wa}
"""


@pytest.mark.db
def test_preview_shows_the_closed_window_as_the_send_decision_does(settings, tmp_path):
    """`campaign preview --customer` asks the same decision at each planned time: a
    free-form step is skipped `window_closed` for a customer who never wrote to us, or
    whose window will have closed by then; an approved template needs no window."""
    writer, earlier = "+4915112345670", "+4915112345671"
    add_customers(settings, WA_CUSTOMER, {**WA_CUSTOMER, "id": "c3", "phone": writer},
                  {**WA_CUSTOMER, "id": "c4", "phone": earlier})
    with session_scope(settings.db_url) as s:
        record_feedback([twilio_item({"MessageSid": f"SMin{n}", "SmsStatus": "received",
                                      "From": f"whatsapp:{phone}", "Body": "Hello?"},
                                     None) for n, phone in ((1, writer), (2, earlier))],
                        session=s)
        s.execute(update(DeliveryEvent).where(DeliveryEvent.address == f"whatsapp:{earlier}")
                  .values(occurred_at=now_utc() - timedelta(hours=23)))
    loaded = load_campaign(write_campaign(tmp_path / "c", FREE_YAML, WA_TEMPLATES))
    skipped = {}
    with session_scope(settings.db_url) as s:
        for c in ("c1", "c3", "c4"):
            plan = preview(loaded, c, session=s, settings=settings,
                           start=now_utc(aware=True))
            skipped[c] = [m.get("skipped") for m in plan]
    assert skipped["c1"] == ["window_closed", "window_closed", None]  # never wrote
    assert skipped["c3"] == [None, None, None]                 # wrote now: open for 24 h
    assert skipped["c4"] == [None, "window_closed", None]      # closes an hour from now
