"""Twilio SMS: the real `twilio` SDK with `client.api.base_url` pointed at a local fake of the
Messages API; the exact request, E.164 validation, segments, error classes and pacing."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import pytest

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, pace
from omnicascade.channels.ratelimit import RateLimiter
from omnicascade.channels.twilio_sms import TwilioChannel, TwilioSettings
from tests.helpers.fake_provider import DROP, FakeProvider, Reply, refused_url

SID, TOKEN = "AC" + "0" * 32, "twilio-auth-token-0123456789"
MSG = Message(delivery_id="enr_abc:1", channel="sms", to="+4915112345678",
              body="Your code T-ABC123 ✓ expires soon", customer_id="c1", run_id="run_1",
              step="1", campaign="abandoned-cart")
CREATED = Reply(201, {"sid": "SM" + "1" * 32, "status": "queued", "num_segments": "2"})


def channel(url: str, **kw: object) -> TwilioChannel:
    config = TwilioSettings(**{"account_sid": SID, "auth_token": TOKEN, "api_base_url": url,
                               "messaging_service_sid": "MG" + "2" * 32, "rate": 0, **kw})
    return TwilioChannel(config, callback_base="https://hooks.shop.example")


def error(status: int, code: int, message: str = "error") -> Reply:
    return Reply(status, {"code": code, "message": message, "status": status,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}"})


async def test_sends_exactly_what_twilio_expects():
    with FakeProvider(CREATED) as fake:
        result = await channel(fake.url).send(MSG)
    assert (result.provider, result.message_id, result.segments) == ("twilio", "SM" + "1" * 32,
                                                                     2)
    [req] = fake.seen
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert req.headers["authorization"] == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    assert req.form() == {
        "To": "+4915112345678", "Body": "Your code T-ABC123 ✓ expires soon",
        "MessagingServiceSid": "MG" + "2" * 32,
        # the opaque delivery id rides on the status callback URL, never the number
        "StatusCallback": "https://hooks.shop.example/webhooks/twilio?delivery=enr_abc%3A1"}


async def test_from_number_instead_of_messaging_service():
    with FakeProvider(CREATED) as fake:
        await channel(fake.url, messaging_service_sid=None, from_number="+15005550006").send(MSG)
    form = fake.seen[0].form()
    assert form["From"] == "+15005550006" and "MessagingServiceSid" not in form


@pytest.mark.parametrize("number", ["+49151", "015112345678", "+999123456789", "call me"])
async def test_invalid_numbers_fail_permanently_before_any_request(number: str):
    with FakeProvider(CREATED) as fake, \
            pytest.raises(PermanentSendError, match="invalid phone number"):
        await channel(fake.url).send(replace(MSG, to=number))
    assert fake.seen == []


@pytest.mark.parametrize("reply, kind, suppress", [
    (error(400, 21211, "The 'To' number is not a valid phone number."), "permanent", True),
    (error(400, 21610, "Attempt to send to unsubscribed recipient"), "permanent", True),
    (error(400, 21614, "'To' number is not a valid mobile number"), "permanent", True),
    (error(400, 21612, "The 'To' phone number is not currently reachable"), "permanent", False),
    (error(400, 21602, "Message body is required."), "retry", False),
    (error(401, 20003, "Authenticate"), "retry", False),
    (error(429, 20429, "Too Many Requests"), "retry", False),
    (error(500, 20500, "Internal Server Error"), "retry", False),
    (Reply(503, b"<html>unavailable</html>"), "retry", False),
])
async def test_answers_are_classified(reply: Reply, kind: str, suppress: bool):
    with FakeProvider().answer(reply) as fake, \
            pytest.raises((PermanentSendError, RetryableSendError)) as err:
        await channel(fake.url).send(MSG)
    assert len(fake.seen) == 1
    expected = PermanentSendError if kind == "permanent" else RetryableSendError
    assert isinstance(err.value, expected), err.value
    if kind == "permanent":
        assert err.value.suppress is suppress


async def test_unreachable_is_retryable_but_a_dropped_answer_is_ambiguous():
    with pytest.raises(RetryableSendError, match="unreachable"):
        await channel(refused_url()).send(MSG)
    with FakeProvider().answer(Reply(DROP)) as fake, pytest.raises(Exception) as err:
        await channel(fake.url).send(MSG)
    assert not isinstance(err.value, (RetryableSendError, PermanentSendError))


def test_rate_limiter_paces_and_holds_far_slots():
    now = [100.0]
    limiter = RateLimiter(rate=2, burst=2, max_wait_s=1.0, clock=lambda: now[0])
    assert [limiter.slot(f"d{i}") for i in range(4)] == [0.0, 0.0, 0.5, 1.0]
    # a slot further away than max_wait is held for that delivery, not lost or given away
    assert limiter.slot("d4") == 1.5
    assert limiter.slot("d5") == 2.0
    now[0] += 1.5
    assert limiter.slot("d4") == 0.0  # its held slot has come
    assert limiter.slot("d6") == 1.0  # after d5's held slot, not before it


async def test_sends_beyond_the_sender_rate_are_retried_not_dropped():
    with FakeProvider(CREATED) as fake:
        sms = channel(fake.url, rate=1.0, burst=1)
        sms.limiter.max_wait_s = 0.2
        await pace(sms, MSG)
        await sms.send(MSG)
        with pytest.raises(RetryableSendError, match="paced to 1 msg/s") as err:
            await pace(sms, replace(MSG, delivery_id="enr_def:1"))
    assert 0.5 < (err.value.retry_after or 0) <= 1.0
    assert len(fake.seen) == 1  # the paced message never reached Twilio


async def test_a_429_retry_after_sets_the_next_attempt_delay():
    busy = error(429, 20429, "Too Many Requests")
    with FakeProvider().answer(Reply(busy.status, busy.body, {"Retry-After": "7"}),
                               Reply(500, busy.body)) as fake:
        sms = channel(fake.url)
        with pytest.raises(RetryableSendError) as first:
            await sms.send(MSG)
        with pytest.raises(RetryableSendError) as second:  # no header: Temporal's backoff
            await sms.send(MSG)
    assert first.value.retry_after == 7.0 and "429" in first.value.reason
    assert second.value.retry_after is None
    assert len(fake.seen) == 2


@pytest.mark.db
async def test_pacing_waits_before_the_last_guard_so_a_conversion_during_it_stops_the_send(
        settings, tmp_path):
    """The probe: a send passed its guard, then waited for its pacing slot, and went out
    after the customer's conversion. The slot is now waited for before the last guard."""
    import asyncio

    from omnicascade.activities.deliver import DeliverActivities
    from omnicascade.channels.outbox import OutboxChannel
    from omnicascade.db.models import Delivery
    from omnicascade.db.session import session_scope
    from omnicascade.reports.run_views import sends_after_conversion
    from omnicascade.vocabulary import CHANNELS
    from omnicascade.workflows.types import StepPlan
    from tests.helpers.campaigns import FULL, write_campaign
    from tests.helpers.cascades import add_customers, convert, deliver_now, enroll

    campaign = write_campaign(tmp_path / "c", "campaign: paced\nconversion: {events: [order_placed]}"
                              "\nsteps:\n  - {channel: sms, template: t_sms}\n")
    add_customers(settings, {"id": "c1", **FULL}, {"id": "c2", **FULL})
    _, enrollments = await enroll(None, settings, campaign, ["c1", "c2"], start=False)  # type: ignore[arg-type]
    with FakeProvider(CREATED) as fake:
        sms = channel(fake.url, rate=1.0, burst=1)
        sms.limiter.max_wait_s = 5.0  # c2's slot is 1 s away: it waits for it
        channels = {c: OutboxChannel(settings.db_url) for c in CHANNELS} | {"sms": sms}
        acts = DeliverActivities(settings, channels)
        step = StepPlan("0", 0, "sms", "t_sms", 0)
        first = await deliver_now(settings, enrollments[0].id, step, acts)
        waiting = asyncio.create_task(deliver_now(settings, enrollments[1].id, step, acts))
        await asyncio.sleep(0.4)  # c2 is waiting for its slot: now c2 buys
        await convert(None, settings, "c2", signal=False)
        second = await waiting
    assert first.status == "sent"
    assert (second.status, second.reason) == ("skipped", "converted"), second
    assert len(fake.seen) == 1  # only c1's message reached Twilio
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, f"{enrollments[0].id}:0")
        assert row is not None and row.sending_at is not None
        assert row.sent_at is not None and row.sending_at <= row.sent_at
        assert sends_after_conversion(session=s) == 0
    # Counted by when the provider was called, not when the row was written: c1 converts
    # after its send (0); had the call come later than the conversion, it would count.
    await convert(None, settings, "c1", event_id="conv-c1", signal=False)
    with session_scope(settings.db_url) as s:
        assert sends_after_conversion(session=s) == 0
        row = s.get(Delivery, f"{enrollments[0].id}:0")
        assert row is not None and row.sending_at is not None
        row.sending_at += timedelta(hours=1)  # the provider called long after the row
        s.flush()
        assert sends_after_conversion(session=s) == 1
