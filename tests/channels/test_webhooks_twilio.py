"""/webhooks/twilio: X-Twilio-Signature computed with Twilio's own RequestValidator and a test
auth token; status callbacks recorded per delivery, an undelivered SMS to a dead number
fails the step and suppresses it; inbound STOP suppresses the number, START lifts it."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from omnicascade.api.app import create_app
from omnicascade.db.models import Delivery, DeliveryEvent, Suppression
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import asgi_client
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

TOKEN = "twilio-auth-token-for-tests-0123"
PHONE = FULL["phone"]
BOUND = "http://127.0.0.1:8787"  # no public URL: the address the API is bound to


@pytest.fixture
async def hook(settings, campaign_file, monkeypatch):
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", TOKEN)
    settings = reread(settings)
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, campaign_file, ["c1"], start=False)  # type: ignore
    sent = await deliver_now(settings, e.id, StepPlan("1", 1, "sms", "t_sms", 86400))
    assert sent.status == "sent"
    temporal = SignalRecorder()
    app = create_app(settings, temporal)
    http = asgi_client(app)

    async def post(params: dict[str, str], *, query: str = "", token: str = TOKEN,
                   url: str | None = None, signature: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        path = "/webhooks/twilio" + (f"?{query}" if query else "")
        sig = signature if signature is not None else RequestValidator(token).compute_signature(
            url or f"{BOUND}{path}", params)
        return await http.post(path, content=urlencode(params), headers={
            "X-Twilio-Signature": sig,
            "content-type": "application/x-www-form-urlencoded", **(headers or {})})
    yield settings, post, temporal, f"{e.id}:1", e.id
    await http.aclose()


def _status(status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "1" * 32, "MessageStatus": status, "SmsStatus": status,
            "To": PHONE, "From": "+15005550006", "AccountSid": "AC" + "0" * 32, **extra}


def _inbound(body: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "Body": body,
            "From": PHONE, "To": "+15005550006", "AccountSid": "AC" + "0" * 32}


def _state(settings):
    with session_scope(settings.db_url) as s:
        return ([(r.delivery_id, r.event) for r in s.scalars(select(DeliveryEvent)
                                                               .order_by(DeliveryEvent.id))],
                [(r.channel, r.address, r.reason) for r in s.scalars(select(Suppression))],
                next((d.status, d.reason) for d in s.scalars(select(Delivery))))


async def test_status_callbacks_are_recorded_per_delivery_once(hook):
    settings, post, temporal, delivery_id, _ = hook
    query = urlencode({"delivery": delivery_id})
    for status in ("sent", "delivered", "delivered"):
        r = await post(_status(status), query=query)
        assert r.status_code == 200 and "<Response>" in r.text
    events, suppressed, delivery = _state(settings)
    assert events == [(delivery_id, "sent"), (delivery_id, "delivered")]
    assert suppressed == [] and delivery == ("sent", None) and temporal.signals == []


async def test_undelivered_to_a_dead_number_fails_the_step_and_suppresses(hook):
    settings, post, temporal, delivery_id, enrollment_id = hook
    query = urlencode({"delivery": delivery_id})
    for _ in range(2):
        r = await post(_status("undelivered", ErrorCode="30006"), query=query)
        assert r.status_code == 200
    events, suppressed, delivery = _state(settings)
    assert events == [(delivery_id, "undelivered")]
    assert suppressed == [("sms", PHONE, "not a mobile number")]
    assert delivery == ("sent", "sms undelivered (Twilio 30006)")
    assert temporal.signals == [(f"cascade-{enrollment_id}", "step_failed", "1")]


async def test_stop_suppresses_and_start_lifts(hook):
    settings, post, _, _, _ = hook
    assert (await post(_inbound(" stop ", "SMin1"))).status_code == 200
    assert _state(settings)[1] == [("sms", PHONE, "stop")]
    await post(_inbound("STOP", "SMin1"))  # redelivered: nothing twice
    await post(_inbound("HELP", "SMin2"))
    assert _state(settings)[1] == [("sms", PHONE, "stop")]
    await post(_inbound("Start", "SMin3"))
    events, suppressed, _ = _state(settings)
    assert suppressed == []
    assert [e for _, e in events] == ["inbound_stop", "inbound", "inbound_start"]


async def test_public_url_is_what_twilio_signs(hook):
    settings, post, *_ = hook
    settings.public_url = "https://hooks.shop.example"
    r = await post(_inbound("STOP", "SMin9"),
                   url="https://hooks.shop.example/webhooks/twilio")
    assert r.status_code == 200 and _state(settings)[1] == [("sms", PHONE, "stop")]


async def test_a_form_signed_for_another_host_is_refused_whatever_the_headers_say(hook):
    """The URL is the configured one, never the request's Host or X-Forwarded-* headers: a
    START signed (with the right auth token) for another app's URL cannot lift a STOP."""
    settings, post, *_ = hook
    assert (await post(_inbound("STOP", "SMin1"))).status_code == 200
    spoofed = {"host": "other-app.example.com", "x-forwarded-proto": "https",
               "x-forwarded-host": "other-app.example.com"}
    for public in (None, "https://hooks.shop.example"):
        settings.public_url = public
        for url in ("https://other-app.example.com/webhooks/twilio",
                    "http://other-app.example.com/webhooks/twilio",
                    "http://api/webhooks/twilio"):  # what the request's own URL says
            r = await post(_inbound("START", f"SMx{len(url)}"), url=url, headers=spoofed)
            assert r.status_code == 403, (public, url, r.text)
    assert _state(settings)[1] == [("sms", PHONE, "stop")]  # the STOP stands
    r = await post(_inbound("START", "SMok"), url="https://hooks.shop.example/webhooks/twilio",
                   headers=spoofed)
    assert r.status_code == 200 and _state(settings)[1] == []


async def test_forged_or_unsigned_requests_change_nothing(hook):
    settings, post, temporal, delivery_id, _ = hook
    query = urlencode({"delivery": delivery_id})
    good = RequestValidator(TOKEN).compute_signature(
        f"{BOUND}/webhooks/twilio?{query}", _status("failed", ErrorCode="30005"))
    cases = [({"signature": ""}, 401),
             ({"token": "not-the-auth-token"}, 403),
             ({"url": f"{BOUND}/webhooks/twilio?delivery=other:1"}, 403),
             ({"signature": good, "query": urlencode({"delivery": "enr_other:1"})}, 403)]
    for kwargs, status in cases:
        kwargs.setdefault("query", query)
        r = await post(_status("failed", ErrorCode="30005"), **kwargs)
        assert r.status_code == status, (kwargs, r.text)
    r = await post(_inbound("STOP", "SMx"), signature=RequestValidator(TOKEN).compute_signature(
        f"{BOUND}/webhooks/twilio", _inbound("START", "SMx")))
    assert r.status_code == 403
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 0
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
    assert temporal.signals == []


async def test_a_callback_no_database_can_store_is_answered_and_recorded_as_rejected(hook):
    """Twilio retries a non-2xx answer: a NUL in a field (PostgreSQL refuses it) or an error
    code that is not a plain number must not make every retry a 500."""
    settings, post, temporal, delivery_id, _ = hook
    r = await post(_inbound("STOP", "SMnul") | {"From": PHONE + "\x00"})
    assert r.status_code == 200 and "<Response>" in r.text, r.text
    r = await post(_status("undelivered", ErrorCode="3\u00b2"),  # "3²": isdigit(), not int()
                   query=urlencode({"delivery": delivery_id}))
    assert r.status_code == 200, r.text
    with session_scope(settings.db_url) as s:
        rows = [(e.event, (e.data or {}).get("reason", "")) for e in
                s.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id))]
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
    assert rows[0][0] == "rejected" and "NUL" in rows[0][1], rows
    assert rows[1] == ("undelivered", "")
    assert _state(settings)[2] == ("sent", "sms undelivered")
    assert len(temporal.signals) == 1
