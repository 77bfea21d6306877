"""Exactly one delivery, for every real provider: the real deliver_step activity, the real SDK
and a local fake of the provider. Retryable answers are retried and sent once; permanent
ones are recorded as failed with their consequence (suppression, dead token removed);
ambiguous ones (the provider may have it) are `unknown` and never resent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.channels.fcm_push import AnonymousCredential, FcmChannel, FcmSettings
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.sendgrid_email import SendGridChannel, SendGridSettings
from omnicascade.channels.telegram_bot import TelegramChannel, TelegramSettings
from omnicascade.channels.twilio_sms import TwilioChannel, TwilioSettings
from omnicascade.db.models import Customer, Delivery, Suppression
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.fake_provider import DROP, FakeProvider, Reply

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

CUSTOMER = {**FULL, "telegram_chat_id": "987654321", "push_token": "device-token-xyz"}


@dataclass
class Case:
    step: StepPlan
    make: Callable[[str], Any]
    ok: Reply
    retry: Reply
    permanent: Reply
    failed_reason: str


def _twilio_error(code: int) -> Reply:
    return Reply(400, {"code": code, "message": "refused", "status": 400})


CASES = {
    "sendgrid": Case(
        StepPlan("0", 0, "email", "t_email", 86400),
        lambda url: SendGridChannel(SendGridSettings(api_key="SG.key-123456789",
                                                     from_email="shop@example.com", host=url)),
        Reply(202, b"", {"X-Message-Id": "sg-1"}),
        Reply(429, {"errors": []}, {"Retry-After": "1"}),
        Reply(400, {"errors": [{"message": "Does not contain a valid address.",
                                "field": "personalizations.0.to.0.email"}]}),
        "invalid address"),
    "twilio": Case(
        StepPlan("1", 1, "sms", "t_sms", 86400),
        lambda url: TwilioChannel(TwilioSettings(account_sid="AC" + "0" * 32,
                                                 auth_token="token-123456789", rate=0,
                                                 from_number="+15005550006",
                                                 api_base_url=url)),
        Reply(201, {"sid": "SM1", "num_segments": "1"}), Reply(503, b"busy"),
        _twilio_error(21610), "opted out"),
    "telegram": Case(
        StepPlan("2", 2, "telegram", "t_telegram", 86400),
        lambda url: TelegramChannel(TelegramSettings(bot_token="1:abc", bot_username="b",
                                                     api_base_url=f"{url}/bot", rate=0)),
        Reply(200, {"ok": True, "result": {"message_id": 5, "date": 0,
                                           "chat": {"id": 987654321, "type": "private"}}}),
        Reply(429, {"ok": False, "error_code": 429, "description": "Too Many Requests",
                    "parameters": {"retry_after": 1}}),
        Reply(403, {"ok": False, "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user"}),
        "blocked"),
    "fcm": Case(
        StepPlan("3", 3, "push", "t_push", 0),
        lambda url: FcmChannel(FcmSettings(project_id="demo-shop", endpoint=url),
                               credential=AnonymousCredential()),
        Reply(200, {"name": "projects/demo-shop/messages/1"}),
        Reply(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}),
        Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "gone",
                              "details": [{"@type": "type.googleapis.com/google.firebase."
                                                    "fcm.v1.FcmError",
                                           "errorCode": "UNREGISTERED"}]}}),
        "no longer valid"),
}


@pytest.fixture(params=sorted(CASES))
def case(request) -> Iterator[tuple[str, Case]]:
    yield request.param, CASES[request.param]


@pytest.fixture
async def setup(settings, campaign_file):
    add_customers(settings, {"id": "c1", **CUSTOMER})
    _, [e] = await enroll(None, settings, campaign_file, ["c1"], start=False)  # type: ignore
    return settings, e


def _run(settings, channel, step: StepPlan, enrollment_id: str):
    channels: dict[str, Any] = {c: OutboxChannel(settings.db_url) for c in CHANNELS}
    channels[step.channel] = channel
    acts = DeliverActivities(settings, channels)
    return ActivityEnvironment().run(acts.deliver_step, DeliverInput(enrollment_id, step))


def _close(channel: Any) -> None:
    if hasattr(channel, "close"):
        channel.close()


async def test_retryable_answer_is_retried_and_delivered_once(case, setup):
    name, c = case
    settings, e = setup
    with FakeProvider(c.ok).answer(c.retry) as fake:
        channel = c.make(fake.url)
        with pytest.raises(Exception, match="will retry"):
            await _run(settings, channel, c.step, e.id)
        with session_scope(settings.db_url) as s:
            assert s.get(Delivery, f"{e.id}:{c.step.key}").status == "retrying"
        first = await _run(settings, channel, c.step, e.id)
        again = await _run(settings, channel, c.step, e.id)
        _close(channel)
    assert first.status == again.status == "sent", (name, first)
    assert first.provider_message_id == again.provider_message_id
    assert len(fake.seen) == 2  # the refused attempt and the one delivery
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, f"{e.id}:{c.step.key}")
        assert (row.provider, row.attempts) == (name, 2)
        if name == "twilio":  # the segments Twilio bills, priced per segment
            assert (row.segments, row.cost) == (1, settings.cost_sms)


async def test_permanent_answer_fails_the_step_with_its_consequence(case, setup):
    name, c = case
    settings, e = setup
    with FakeProvider(c.ok).answer(c.permanent) as fake:
        channel = c.make(fake.url)
        result = await _run(settings, channel, c.step, e.id)
        again = await _run(settings, channel, c.step, e.id)
        _close(channel)
    assert result.status == again.status == "failed" and c.failed_reason in result.reason
    assert len(fake.seen) == 1
    with session_scope(settings.db_url) as s:
        suppressed = [(x.channel, x.address) for x in s.scalars(select(Suppression))]
        customer = s.get(Customer, "c1")
    expected = {"sendgrid": [], "twilio": [("sms", FULL["phone"])],
                "telegram": [("telegram", "987654321")], "fcm": []}[name]
    assert suppressed == expected
    assert customer.push_token == (None if name == "fcm" else "device-token-xyz")


async def test_ambiguous_answer_is_unknown_and_never_resent(case, setup):
    name, c = case
    settings, e = setup
    with FakeProvider(c.ok).answer(Reply(DROP)) as fake:
        channel = c.make(fake.url)
        result = await _run(settings, channel, c.step, e.id)
        again = await _run(settings, channel, c.step, e.id)
        _close(channel)
    assert result.status == again.status == "unknown", (name, result)
    assert len(fake.seen) == 1
