"""`channel: webhook`: the real channel (httpx) against a local fake receiver, asserting the
exact request the shop's receiver gets (JSON body, our v2 signature keyed with the channel
secret over method + path + body, Idempotency-Key = delivery id), and through the real
deliver_step activity how each answer is classified: 2xx sent, 5xx retried then sent once,
4xx failed at once, 429 retried after Retry-After, no answer `unknown` and never resent."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from omnicascade.api.signature import HEADER, verify
from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError
from omnicascade.channels.registry import build_channel
from omnicascade.channels.webhook_channel import WebhookChannel, WebhookChannelSettings
from omnicascade.db.models import Delivery
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, deliver_now, enroll, outbox_activities
from tests.helpers.env import reread
from tests.helpers.fake_provider import DROP, FakeProvider, Reply, refused_url
from tests.helpers.webhook import STEP, hook_campaign

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

SECRET = "channel-secret-0123456789abcdef"
PATH = "/omnicascade/messages?shop=42"
def channel(url: str, **extra: Any) -> WebhookChannel:
    return WebhookChannel(WebhookChannelSettings(url=url + PATH, secret=SECRET, **extra))


@pytest.fixture
async def enrolled(settings, tmp_path) -> tuple[Any, str]:
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, hook_campaign(tmp_path / "hook"), ["c1"],
                          start=False)  # type: ignore[arg-type]
    return settings, e.id


async def _deliver(settings: Any, enrollment_id: str, hook: WebhookChannel) -> Any:
    acts = outbox_activities(settings)
    acts.channels["webhook"] = hook
    try:
        return await deliver_now(settings, enrollment_id, STEP, acts)
    finally:
        await hook.aclose()


def _row(settings: Any, delivery_id: str) -> Delivery:
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, delivery_id)
        assert row is not None
        s.expunge(row)
        return row


async def test_the_request_is_signed_json_with_an_idempotency_key(enrolled):
    settings, eid = enrolled
    with FakeProvider(Reply(202, {"message_id": "viber-77"})) as fake:
        result = await _deliver(settings, eid, channel(fake.url))
    assert (result.status, result.provider_message_id) == ("sent", "viber-77")
    [seen] = fake.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/omnicascade/messages",
                                                    {"shop": ["42"]})
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["idempotency-key"] == f"{eid}:0"
    # the receiver's recipe: our v2 scheme over "<t>.POST.<path?query>.<raw body>"
    verify(SECRET, seen.headers[HEADER.lower()], "POST", PATH, seen.body)
    with pytest.raises(ValueError, match="does not match"):
        verify(SECRET, seen.headers[HEADER.lower()], "POST", "/other", seen.body)
    body = seen.json()
    assert body == {
        "delivery_id": f"{eid}:0", "customer_id": "c1", "campaign": "hook-cascade",
        "run_id": body["run_id"], "step": "0", "channel": "webhook",
        "body": "Hi c1, your cart waits", "subject": None, "title": None, "data": {},
        "unsubscribe_url": body["unsubscribe_url"]}
    assert body["run_id"] and "/u/" in body["unsubscribe_url"]
    row = _row(settings, f"{eid}:0")
    assert (row.status, row.provider, row.to_address) == ("sent", "http", "c1")


async def test_a_2xx_without_a_message_id_is_sent_under_the_delivery_id(enrolled):
    settings, eid = enrolled
    with FakeProvider(Reply(204, b"")) as fake:
        result = await _deliver(settings, eid, channel(fake.url))
    assert (result.status, result.provider_message_id) == ("sent", f"{eid}:0")


async def test_a_5xx_is_retried_and_sent_once(enrolled):
    settings, eid = enrolled
    with FakeProvider(Reply(200, {"message_id": "m-1"})).answer(
            Reply(500, {"error": "database down"})) as fake:
        with pytest.raises(ApplicationError, match="will retry.*500: database down"):
            await _deliver(settings, eid, channel(fake.url))
        assert _row(settings, f"{eid}:0").status == "retrying"
        first = await _deliver(settings, eid, channel(fake.url))
        again = await _deliver(settings, eid, channel(fake.url))
    assert first.status == again.status == "sent" and again.provider_message_id == "m-1"
    assert len(fake.seen) == 2  # the refused attempt and the one delivery
    assert {s.headers["idempotency-key"] for s in fake.seen} == {f"{eid}:0"}
    assert _row(settings, f"{eid}:0").attempts == 2


async def test_a_429_is_retried_after_its_retry_after(enrolled):
    settings, eid = enrolled
    with FakeProvider().answer(Reply(429, {}, {"Retry-After": "7"})) as fake, \
            pytest.raises(ApplicationError) as refused:
        await _deliver(settings, eid, channel(fake.url))
    assert refused.value.next_retry_delay == timedelta(seconds=7)
    assert _row(settings, f"{eid}:0").status == "retrying"


async def test_a_4xx_fails_the_step_at_once_and_is_never_resent(enrolled):
    settings, eid = enrolled
    with FakeProvider().answer(Reply(404, {"detail": "no such customer"})) as fake:
        result = await _deliver(settings, eid, channel(fake.url))
        again = await _deliver(settings, eid, channel(fake.url))
    assert result.status == again.status == "failed"
    assert result.reason == "webhook receiver answered 404: no such customer"
    assert len(fake.seen) == 1


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A receiver that takes the connection and the request and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_a_timeout_is_unknown_and_never_resent(enrolled, silent_url):
    settings, eid = enrolled
    result = await _deliver(settings, eid, channel(silent_url, timeout_s=0.3))
    again = await _deliver(settings, eid, channel(silent_url, timeout_s=0.3))
    assert result.status == again.status == "unknown"
    assert "0.3s deadline" in (result.reason or "") and "may have the message" in result.reason


async def test_a_dropped_answer_is_unknown(enrolled):
    settings, eid = enrolled
    with FakeProvider().answer(Reply(DROP)) as fake:
        result = await _deliver(settings, eid, channel(fake.url))
    assert result.status == "unknown" and len(fake.seen) == 1


def _message() -> Message:
    return Message(delivery_id="e1:0", channel="webhook", to="c1", body="hi", customer_id="c1",
                   run_id="r1", step="0", campaign="c")


async def test_no_connection_at_all_is_retryable():
    hook = channel(refused_url())
    with pytest.raises(RetryableSendError, match="unreachable"):
        await hook.send(_message())
    await hook.aclose()


@pytest.mark.parametrize(("status", "kind"), [(408, RetryableSendError), (503, RetryableSendError),
                                              (400, PermanentSendError),
                                              (410, PermanentSendError),
                                              (301, PermanentSendError)])
async def test_answers_are_classified(status: int, kind: type[Exception]):
    with FakeProvider().answer(Reply(status, b"nope", {"Location": "https://x.example/"})) \
            as fake:
        hook = channel(fake.url)
        with pytest.raises(kind, match=f"answered {status}"):
            await hook.send(_message())
        await hook.aclose()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("URL", "SECRET"):
        monkeypatch.delenv(f"OMNICASCADE_WEBHOOK_CHANNEL_{name}", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env of the developer's
    return monkeypatch


def test_configuration_is_checked_with_messages_naming_the_variable(settings, env):
    with pytest.raises(ConfigError, match="OMNICASCADE_WEBHOOK_CHANNEL_URL must be set"):
        build_channel("webhook", "http", reread(settings))
    env.setenv("OMNICASCADE_WEBHOOK_CHANNEL_URL", "ftp://shop.example/in")
    env.setenv("OMNICASCADE_WEBHOOK_CHANNEL_SECRET", SECRET)
    with pytest.raises(ConfigError, match="not an http\\(s\\) URL"):
        build_channel("webhook", "http", reread(settings))
    env.setenv("OMNICASCADE_WEBHOOK_CHANNEL_URL", "https://shop.example/in")
    hook = build_channel("webhook", "http", reread(settings))
    assert isinstance(hook, WebhookChannel) and hook.provider == "http"
    env.setenv("OMNICASCADE_WEBHOOK_CHANNEL_SECRET", "changeme")
    production = settings.model_copy(update={"env": "production"})
    with pytest.raises(ConfigError, match="OMNICASCADE_WEBHOOK_CHANNEL_SECRET looks like a "
                                          "placeholder"):
        build_channel("webhook", "http", reread(production))
    with pytest.raises(ConfigError, match="use one of: outbox, http"):
        build_channel("webhook", "viber", reread(settings))
