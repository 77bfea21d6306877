"""/webhooks/twilio for WhatsApp, signed with Twilio's own RequestValidator: status callbacks
per delivery (`read` counts as opened), a failure with a dead-number code fails the step
(the cascade moves on) and suppresses the bare number for WhatsApp only; inbound STOP /
START act on WhatsApp only; any other inbound message opens the 24 h window and is
recorded as a `reply` on the latest delivery to that number on its channel, which
`skip_if: [replied]` sees."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from omnicascade.activities.ledger import engaged_before
from omnicascade.api.app import create_app
from omnicascade.cascade.conversations import window_open
from omnicascade.clock import now_utc
from omnicascade.db.models import Delivery, DeliveryEvent, Suppression
from omnicascade.db.session import session_scope
from omnicascade.reports.funnel import OPEN_TRACKING
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import asgi_client
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder
from tests.helpers.whatsapp import WA_CUSTOMER, write_wa_campaign

pytestmark = pytest.mark.db

TOKEN = "twilio-auth-token-for-tests-0123"
PHONE = WA_CUSTOMER["phone"]
BOUND = "http://127.0.0.1:8787"
WA_STEP = StepPlan("0", 0, "whatsapp", "t_wa", 86400)
SMS_STEP = StepPlan("1", 1, "sms", "t_sms", 86400)


@pytest.fixture
async def hook(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", TOKEN)
    settings = reread(settings)
    add_customers(settings, WA_CUSTOMER)
    _, [e] = await enroll(None, settings, write_wa_campaign(tmp_path / "c"),  # type: ignore
                          ["c1"], start=False)
    assert (await deliver_now(settings, e.id, WA_STEP)).status == "sent"
    temporal = SignalRecorder()
    http = asgi_client(create_app(settings, temporal))

    async def post(params: dict[str, str], *, query: str = "") -> httpx.Response:
        path = "/webhooks/twilio" + (f"?{query}" if query else "")
        sig = RequestValidator(TOKEN).compute_signature(f"{BOUND}{path}", params)
        r = await http.post(path, content=urlencode(params), headers={
            "X-Twilio-Signature": sig, "content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200 and "<Response>" in r.text
        return r
    yield settings, post, temporal, e
    await http.aclose()


def _status(status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "1" * 32, "MessageStatus": status, "SmsStatus": status,
            "To": f"whatsapp:{PHONE}", "From": "whatsapp:+15005550006",
            "ChannelPrefix": "whatsapp", "AccountSid": "AC" + "0" * 32, **extra}


def _inbound(body: str, sid: str, sender: str = f"whatsapp:{PHONE}") -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "Body": body,
            "From": sender, "To": "whatsapp:+15005550006", "AccountSid": "AC" + "0" * 32}


def _events(settings) -> list[tuple[str | None, str]]:
    with session_scope(settings.db_url) as s:
        return [(r.delivery_id, r.event) for r in s.scalars(select(DeliveryEvent)
                                                               .order_by(DeliveryEvent.id))]


def _suppressed(settings) -> list[tuple[str, str, str]]:
    with session_scope(settings.db_url) as s:
        return [(r.channel, r.address, r.reason) for r in s.scalars(select(Suppression))]


def _engaged(settings, e, kinds: set[str]) -> frozenset[str]:
    with session_scope(settings.db_url) as s:
        return engaged_before(e.id, f"{e.id}:1", frozenset(kinds), session=s)


async def test_read_is_recorded_per_delivery_and_counts_as_opened(hook):
    settings, post, temporal, e = hook
    query = urlencode({"delivery": f"{e.id}:0"})
    for status in ("sent", "delivered", "read", "read"):
        await post(_status(status), query=query)
    assert _events(settings) == [(f"{e.id}:0", "sent"), (f"{e.id}:0", "delivered"),
                                 (f"{e.id}:0", "read")]
    assert _engaged(settings, e, {"opened", "delivered"}) == {"opened", "delivered"}
    assert "whatsapp" in OPEN_TRACKING  # reports show WhatsApp's opens, not "n/a"
    assert temporal.signals == [] and _suppressed(settings) == []


async def test_a_dead_number_fails_the_step_and_suppresses_it_for_whatsapp_only(hook):
    settings, post, temporal, e = hook
    await post(_status("undelivered", ErrorCode="21211"), query=urlencode(
        {"delivery": f"{e.id}:0"}))
    assert _suppressed(settings) == [("whatsapp", PHONE, "invalid number")]  # bare E.164
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, f"{e.id}:0")
        assert row is not None and (row.status, row.reason) == (
            "sent", "whatsapp undelivered (Twilio 21211)")
    assert temporal.signals == [(f"cascade-{e.id}", "step_failed", "0")]  # next channel now


async def test_stop_suppresses_whatsapp_only_and_start_lifts_it(hook):
    settings, post, *_ = hook
    await post(_inbound(" stop ", "SMin1"))
    assert _suppressed(settings) == [("whatsapp", PHONE, "stop")]  # SMS still allowed
    await post(_inbound("START", "SMin2"))
    assert _suppressed(settings) == []
    assert [ev for _, ev in _events(settings)] == ["inbound_stop", "inbound_start"]


async def test_an_inbound_message_opens_the_window_and_is_a_reply(hook):
    settings, post, _, e = hook
    with session_scope(settings.db_url) as s:
        assert not window_open("whatsapp", PHONE, now_utc(), session=s)
    await post(_inbound("Does it come in blue?", "SMin3"))
    await post(_inbound("Does it come in blue?", "SMin3"))  # redelivered: once
    assert _events(settings) == [(f"{e.id}:0", "reply")]
    with session_scope(settings.db_url) as s:
        assert window_open("whatsapp", PHONE, now_utc(), session=s)
        assert not window_open("whatsapp", PHONE, now_utc() + timedelta(hours=25), session=s)
        assert not window_open("sms", PHONE, now_utc(), session=s)
    # the next step's `skip_if: [replied]` sees it: the SMS is not sent
    assert _engaged(settings, e, {"replied"}) == {"replied"}
    skipped = await deliver_now(settings, e.id, SMS_STEP)
    assert (skipped.status, skipped.reason) == ("skipped", "engaged")


async def test_replies_link_only_to_their_own_channel_and_number(hook):
    settings, post, _, e = hook
    await post(_inbound("hello", "SMin4", sender=PHONE))            # an SMS: nothing sent there
    await post(_inbound("hi", "SMin5", sender="whatsapp:+4915112345699"))  # a stranger
    assert _events(settings) == [(None, "inbound"), (None, "inbound")]
    assert _engaged(settings, e, {"replied"}) == frozenset()
    with session_scope(settings.db_url) as s:  # the stranger's window is open all the same
        assert window_open("whatsapp", "+4915112345699", now_utc(), session=s)
    # an SMS reply links to the SMS delivery once one went out to that number
    assert (await deliver_now(settings, e.id, StepPlan("1", 1, "sms", "t_sms", 86400)
                              )).status == "sent"
    await post(_inbound("sounds good", "SMin6", sender=PHONE))
    assert _events(settings)[-1] == (f"{e.id}:1", "reply")
