"""End to end on the real Temporal dev server with a real worker, the real SendGrid and Twilio
SDKs (selected by OMNICASCADE_<CHANNEL>_PROVIDER, pointed at local fakes) and the API:
the email bounces (signed SendGrid webhook → suppression + step_failed → the SMS goes out at
once, not after the 24h wait), Twilio reports the SMS delivered, the customer answers STOP,
and a later campaign sends them nothing on either channel."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER, sign
from omnicascade.channels.registry import build_channels
from omnicascade.runtime.worker import build_worker
from omnicascade.workflows.cascade import CustomerCascade
from tests.helpers.api import SECRET
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import add_customers, deliveries, enroll, finish, handle
from tests.helpers.env import reread
from tests.helpers.fake_provider import FakeProvider, Reply
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

CAMPAIGN = """\
campaign: e2e-channels
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms,   wait: 24h}
"""
TOKEN = "twilio-e2e-auth-token-0123456789"
PUBLIC = "https://hooks.shop.example"
PHONE = "+4915112345678"


@pytest.fixture
async def stack(dev_env, settings, tmp_path, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with FakeProvider(Reply(202, b"", {"X-Message-Id": "sg-1"})) as sendgrid, \
            FakeProvider(Reply(201, {"sid": "SM" + "7" * 32, "num_segments": "1"})) as twilio:
        for name, value in {
                "EMAIL_PROVIDER": "sendgrid", "SENDGRID_API_KEY": "SG.e2e-key-0123456789",
                "SENDGRID_FROM_EMAIL": "shop@example.com", "SENDGRID_HOST": sendgrid.url,
                "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
                "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15005550006",
                "TWILIO_API_BASE_URL": twilio.url}.items():
            monkeypatch.setenv(f"OMNICASCADE_{name}", value)
        settings = reread(settings.model_copy(update={
            "search_attributes": True, "public_url": PUBLIC,
            "temporal_address": dev_env.client.service_client.config.target_host}))
        http = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_app(settings, dev_env.client)), base_url="http://api")
        async with build_worker(dev_env.client, settings, build_channels(settings)):
            yield settings, http, key, sendgrid, twilio
        await http.aclose()


async def test_bounce_moves_to_sms_at_once_and_stop_silences_later_campaigns(stack, dev_env,
                                                                            tmp_path):
    settings, http, key, sendgrid, twilio = stack
    campaign = write_campaign(tmp_path / "e2e", CAMPAIGN)
    add_customers(settings, {"id": "c1", "email": "gone@example.com", "phone": PHONE})
    _, [e] = await enroll(dev_env.client, settings, campaign, ["c1"])
    h = handle(dev_env.client, e.id)

    await eventually(lambda: sendgrid.seen, "the email to reach SendGrid")
    email = sendgrid.seen[0].json()
    delivery_id = email["custom_args"]["omnicascade_delivery_id"]
    assert delivery_id == f"{e.id}:0"
    assert email["headers"]["List-Unsubscribe"].startswith(f"<{PUBLIC}/u/")

    # SendGrid reports a hard bounce, signed with the account's key
    body = json.dumps([{"email": "gone@example.com", "timestamp": int(time.time()),
                        "event": "bounce", "type": "bounce", "reason": "550 unknown user",
                        "sg_event_id": "bounce-1", "omnicascade_delivery_id": delivery_id}]
                      ).encode()
    ts = str(int(time.time()))
    sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    r = await http.post("/webhooks/sendgrid", content=body, headers={
        "X-Twilio-Email-Event-Webhook-Signature": sig,
        "X-Twilio-Email-Event-Webhook-Timestamp": ts})
    assert r.json() == {"recorded": 1, "duplicates": 0, "rejected": 0, "steps_failed": 1,
                        "signalled": 1}

    # the cascade moves on at once: the SMS goes out now, not after the email's 24h wait
    await eventually(lambda: twilio.seen, "the SMS to reach Twilio")
    sms = twilio.seen[0].form()
    assert sms["To"] == PHONE and sms["From"] == "+15005550006"
    callback = sms["StatusCallback"]
    assert callback == f"{PUBLIC}/webhooks/twilio?" + urlencode({"delivery": f"{e.id}:1"})
    timeline: list[tuple[str, str]] = []

    async def sms_recorded() -> bool:  # the activity returns a moment after Twilio answers
        nonlocal timeline
        progress = await h.query(CustomerCascade.progress)
        timeline = [(t.channel, t.status) for t in progress.timeline]
        return len(timeline) >= 2
    deadline = time.monotonic() + 30
    while not await sms_recorded() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert timeline == [("email", "sent"), ("sms", "sent")]

    async def twilio_post(url: str, params: dict[str, str]) -> httpx.Response:
        path = url.removeprefix(PUBLIC)
        return await http.post(path, content=urlencode(params), headers={
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params),
            "content-type": "application/x-www-form-urlencoded"})
    status = {"MessageSid": "SM" + "7" * 32, "MessageStatus": "delivered", "To": PHONE}
    assert (await twilio_post(callback, status)).status_code == 200
    stop = {"MessageSid": "SMinbound1", "SmsStatus": "received", "Body": "STOP",
            "From": PHONE, "To": "+15005550006"}
    assert (await twilio_post(f"{PUBLIC}/webhooks/twilio", stop)).status_code == 200
    assert deliveries(settings, e.id) == {"0": ("sent", "bounced: 550 unknown user"),
                                          "1": ("sent", None)}

    # the shop reports the order: the first cascade ends
    conv = json.dumps({"event_id": "order-1", "type": "order_placed",
                       "customer_id": "c1"}).encode()
    r = await http.post("/v1/conversions", content=conv, headers={
        HEADER: sign(SECRET, "POST", "/v1/conversions", conv)})
    assert r.status_code == 202
    assert await finish(dev_env, h) == "converted"

    # a later campaign: the bounced address and the STOPped number get nothing
    _, [later] = await enroll(dev_env.client, settings, campaign, ["c1"])
    assert await finish(dev_env, handle(dev_env.client, later.id)) == "completed"
    assert deliveries(settings, later.id) == {"0": ("skipped", "unsubscribed"),
                                              "1": ("skipped", "unsubscribed")}
    assert len(sendgrid.seen) == 1 and len(twilio.seen) == 1
