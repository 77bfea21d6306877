"""SendGrid email: the real `sendgrid` SDK against a local fake of the v3 API. Asserts the
exact request SendGrid would receive and how every kind of answer is classified."""

from __future__ import annotations

import pytest

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError
from omnicascade.channels.registry import build_channels
from omnicascade.channels.sendgrid_email import SendGridChannel, SendGridSettings
from omnicascade.errors import ConfigError
from tests.helpers.env import reread
from tests.helpers.fake_provider import DROP, FakeProvider, Reply, refused_url

KEY = "SG.test-key-0123456789"
MSG = Message(delivery_id="enr_abc:0", channel="email", to="ann@example.com",
              body="Your cart is waiting", html="<p>Your cart is waiting</p>",
              subject="Still thinking?", customer_id="c1", run_id="run_1", step="0",
              campaign="abandoned-cart", unsubscribe_url="https://shop.example/u/tok.sig")
ACCEPTED = Reply(202, b"", {"X-Message-Id": "sg-msg-1"})


def channel(url: str, **kw: object) -> SendGridChannel:
    return SendGridChannel(SendGridSettings(api_key=KEY, from_email="shop@example.com",
                                            from_name="Shop", reply_to="help@example.com",
                                            host=url, **kw))


async def test_sends_exactly_what_sendgrid_expects():
    with FakeProvider(ACCEPTED) as fake:
        result = await channel(fake.url).send(MSG)
    assert (result.provider, result.message_id) == ("sendgrid", "sg-msg-1")
    [req] = fake.seen
    assert (req.method, req.path) == ("POST", "/v3/mail/send")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"
    body = req.json()
    assert body["from"] == {"email": "shop@example.com", "name": "Shop"}
    assert body["reply_to"] == {"email": "help@example.com"}
    assert body["subject"] == "Still thinking?"
    assert body["personalizations"] == [{"to": [{"email": "ann@example.com"}]}]
    assert body["content"] == [{"type": "text/plain", "value": "Your cart is waiting"},
                               {"type": "text/html", "value": "<p>Your cart is waiting</p>"}]
    # correlation is the opaque delivery id only: no address, no name
    assert body["custom_args"] == {"omnicascade_delivery_id": "enr_abc:0"}
    assert body["headers"] == {"List-Unsubscribe": "<https://shop.example/u/tok.sig>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert body["categories"] == ["abandoned-cart"]


@pytest.mark.parametrize("reply, kind, retry_after", [
    (Reply(400, {"errors": [{"message": "Does not contain a valid address.",
                             "field": "personalizations.0.to.0.email"}]}), "permanent", None),
    (Reply(400, {"errors": [{"message": "The subject is required", "field": "subject"}]}),
     "retry", None),
    (Reply(401, {"errors": [{"message": "authorization required"}]}), "retry", None),
    (Reply(413, {"errors": [{"message": "too large"}]}), "retry", None),
    (Reply(429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "7"}),
     "retry", 7.0),
    (Reply(500, {"errors": [{"message": "internal"}]}), "retry", None),
    (Reply(503, b"unavailable"), "retry", None),
])
async def test_answers_are_classified(reply: Reply, kind: str, retry_after: float | None):
    with FakeProvider().answer(reply) as fake, \
            pytest.raises((PermanentSendError, RetryableSendError)) as err:
        await channel(fake.url).send(MSG)
    assert len(fake.seen) == 1  # the SDK itself never retries
    if kind == "permanent":
        assert isinstance(err.value, PermanentSendError) and "valid address" in err.value.reason
        assert not err.value.suppress
    else:
        assert isinstance(err.value, RetryableSendError)
        assert str(reply.status) in err.value.reason
        assert err.value.retry_after == retry_after


async def test_rate_limit_reset_header_is_honoured():
    import time
    reset = str(int(time.time()) + 30)
    with FakeProvider().answer(Reply(429, {"errors": []}, {"X-RateLimit-Reset": reset})) as f, \
            pytest.raises(RetryableSendError) as err:
        await channel(f.url).send(MSG)
    assert 25 <= (err.value.retry_after or 0) <= 30


async def test_unreachable_is_retryable_but_a_dropped_answer_is_ambiguous():
    with pytest.raises(RetryableSendError, match="unreachable"):
        await channel(refused_url()).send(MSG)
    with FakeProvider().answer(Reply(DROP)) as fake, pytest.raises(Exception) as err:
        await channel(fake.url).send(MSG)
    assert not isinstance(err.value, (RetryableSendError, PermanentSendError))
    assert len(fake.seen) == 1


async def test_email_without_subject_is_permanent_and_not_sent():
    from dataclasses import replace
    with FakeProvider(ACCEPTED) as fake, pytest.raises(PermanentSendError, match="subject"):
        await channel(fake.url).send(replace(MSG, subject=None))
    assert fake.seen == []


def test_configured_from_the_environment(monkeypatch, settings):
    monkeypatch.setenv("OMNICASCADE_EMAIL_PROVIDER", "sendgrid")
    monkeypatch.setenv("OMNICASCADE_SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("OMNICASCADE_SENDGRID_FROM_EMAIL", "shop@example.com")
    channels = build_channels(reread(settings))
    assert channels["email"].provider == "sendgrid" and channels["sms"].provider == "outbox"
    monkeypatch.delenv("OMNICASCADE_SENDGRID_FROM_EMAIL")
    with pytest.raises(ConfigError, match="OMNICASCADE_SENDGRID_FROM_EMAIL"):
        build_channels(reread(settings))
    monkeypatch.setenv("OMNICASCADE_SENDGRID_FROM_EMAIL", "shop@example.com")
    monkeypatch.setenv("OMNICASCADE_SENDGRID_API_KEY", "changeme")
    build_channels(reread(settings))  # development: accepted
    prod = settings.model_copy(update={"env": "production"})
    with pytest.raises(ConfigError, match="OMNICASCADE_SENDGRID_API_KEY.*placeholder"):
        build_channels(reread(prod))
    monkeypatch.setenv("OMNICASCADE_EMAIL_PROVIDER", "mailgun")
    with pytest.raises(ConfigError, match="'mailgun' is not a provider for email.*sendgrid"):
        build_channels(reread(settings))
