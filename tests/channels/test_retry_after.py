"""One bounded reading of Retry-After for every provider (channels/retry_after.py): the
delay is at most SEND_RETRY_MAX_S — the deliver activity's RetryPolicy maximum interval —
and anything that is not a sane delay is None (the policy's own back-off). Each real SDK
against the local fake, answering with a three-year and a non-finite Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicascade.activities.deliver import _retry
from omnicascade.channels.base import Message, RetryableSendError
from omnicascade.channels.fcm_push import AnonymousCredential, FcmChannel, FcmSettings
from omnicascade.channels.ratelimit import RateLimiter
from omnicascade.channels.retry_after import bounded_delay, parse_retry_after, retry_after_seconds
from omnicascade.vocabulary import SEND_RETRY_MAX_S
from omnicascade.workflows.sending import retry_policy
from omnicascade.workflows.types import CascadeInput
from tests.channels import test_channel_sendgrid as sendgrid
from tests.channels import test_channel_telegram as telegram
from tests.channels import test_channel_twilio as twilio
from tests.channels import test_channel_webhook as webhook
from tests.channels import test_channel_whatsapp as whatsapp
from tests.helpers.fake_provider import FakeProvider, Reply

CAP = float(SEND_RETRY_MAX_S)
NOW = 1_800_000_000.0


def test_the_cap_is_the_retry_policy_maximum_interval():
    policy = retry_policy(CascadeInput("e", "r", "c", "cu", []))
    assert policy.maximum_interval == timedelta(seconds=CAP)


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5), (b"12", 12.0),
    ("99999999", CAP), ("300", CAP), ("301", CAP),
    (email.utils.formatdate(NOW + 60, usegmt=True), 60.0),
    (email.utils.formatdate(NOW - 60, usegmt=True), 0.0),  # in the past: now
    (email.utils.formatdate(NOW + 10 * 365 * 86400, usegmt=True), CAP),
    ("Fri, 31 Dec 9999 23:59:59 GMT", CAP),
])
def test_delta_seconds_and_http_dates(value: Any, seconds: float):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [
    "inf", "Infinity", "-inf", "nan", "NaN", "-5", "-0.5", "1e9", "1e400", "0x10", "+5",
    "", "   ", "soon", "9" * 5000, "Tue, 99 Foo 2026 25:61:61 GMT", "Mon, 32 Jan 2026",
    "Fri, 31 Dec 99999 23:59:59 GMT", None, float("inf"), float("nan"), -1, True, object(),
])
def test_garbage_is_the_policys_own_back_off(value: Any):
    assert parse_retry_after(value, now=NOW) is None


def test_the_header_is_found_in_any_case_and_absent_is_none():
    assert retry_after_seconds({"retry-AFTER": "5"}) == 5.0
    assert retry_after_seconds({"Content-Type": "x"}) is None
    assert retry_after_seconds(None) is None


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_any_header_value_is_none_or_within_the_cap(value: str | bytes):
    got = parse_retry_after(value)
    assert got is None or 0 <= got <= CAP


@given(st.one_of(st.floats(), st.integers(), st.timedeltas(), st.none(), st.text()))
def test_any_delay_is_none_or_within_the_cap(value: Any):
    got = bounded_delay(value)
    assert got is None or (math.isfinite(got) and 0 <= got <= CAP)


@given(st.one_of(st.floats(), st.integers(min_value=-10**400, max_value=10**400),
                 st.none(), st.text(max_size=20)))
def test_the_activity_never_raises_on_a_channels_delay(value: Any):
    """Defence in depth: `_retry` bounds what a channel hands it (inf raised OverflowError)."""
    err = _retry(RetryableSendError("busy", retry_after=value))
    assert err.next_retry_delay is None or \
        timedelta(0) < err.next_retry_delay <= timedelta(seconds=CAP)


def test_pacing_far_ahead_is_capped():
    limiter = RateLimiter(0.0001, burst=1, max_wait_s=1, clock=lambda: 100.0)
    limiter.slot("a")
    with pytest.raises(RetryableSendError) as err:
        asyncio.run(limiter.acquire("b"))  # its slot is 10,000 s away
    assert err.value.retry_after == CAP


def _fcm(url: str) -> FcmChannel:
    return FcmChannel(FcmSettings(project_id="demo-shop", endpoint=url, timeout_s=5),
                      credential=AnonymousCredential())


def _telegram_reply(value: str) -> Reply:
    return telegram.refused(f"Too Many Requests: retry after {value}", 429,
                            parameters={"retry_after": int(value)})


PROVIDERS: dict[str, tuple[Callable[[str], Any], Message, Callable[[str], Reply]]] = {
    "sendgrid": (sendgrid.channel, sendgrid.MSG,
                 lambda v: Reply(429, {"errors": [{"message": "slow"}]}, {"Retry-After": v})),
    "twilio-sms": (twilio.channel, twilio.MSG,
                   lambda v: Reply(429, twilio.error(429, 20429).body, {"Retry-After": v})),
    "whatsapp": (whatsapp.channel, whatsapp.MSG,
                 lambda v: Reply(429, whatsapp.error(429, 20429).body, {"Retry-After": v})),
    "fcm": (_fcm, Message(delivery_id="e:3", channel="push", to="tok", body="b",
                          customer_id="c1", run_id="r", step="3", campaign="c"),
            lambda v: Reply(429, {"error": {"code": 429, "message": "quota",
                                            "status": "RESOURCE_EXHAUSTED"}},
                            {"Retry-After": v})),
    "webhook": (webhook.channel, webhook._message(),
                lambda v: Reply(503, {"error": "busy"}, {"Retry-After": v})),
}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.parametrize(("header", "expected"), [("99999999", CAP), ("inf", None),
                                                   ("7", 7.0)])
async def test_every_provider_bounds_its_retry_after(name: str, header: str,
                                                     expected: float | None):
    make, message, reply = PROVIDERS[name]
    with FakeProvider().answer(reply(header)) as fake:
        channel = make(fake.url)
        try:
            with pytest.raises(RetryableSendError) as err:
                await channel.send(message)
        finally:
            await _close(channel)
    assert err.value.retry_after == expected


async def test_telegram_flood_control_is_capped():
    with FakeProvider().answer(_telegram_reply("99999999")) as fake, \
            pytest.raises(RetryableSendError) as err:
        await telegram.channel(fake.url).send(telegram.MSG)
    assert err.value.retry_after == CAP


async def _close(channel: Any) -> None:
    closing = getattr(channel, "aclose", None) or getattr(channel, "close", None)
    if closing is not None:
        result = closing()
        if isinstance(result, Awaitable):
            await result
