"""A provider that refuses a send for now sets the next attempt with Retry-After: on the
time-skipping server, with the real webhook channel against a local fake receiver that
answers 503 with `Retry-After: 99999999` (three years). The next attempt comes within the
retry policy's maximum interval (SEND_RETRY_MAX_S), and a conversion or a stop while
Temporal is backing off ends the cascade at once, with no further request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from omnicascade.cascade.control import stop_run
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.webhook_channel import WebhookChannel, WebhookChannelSettings
from omnicascade.config import Settings
from omnicascade.runtime.worker import build_worker
from omnicascade.vocabulary import CHANNELS, SEND_RETRY_MAX_S
from omnicascade.workflows.cascade import CustomerCascade
from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign
from tests.helpers.cascades import (
    add_customers,
    convert,
    deliveries,
    enroll,
    enrollment,
    finish,
    handle,
    times,
)
from tests.helpers.fake_provider import FakeProvider, Reply
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.db]

FOREVER = Reply(503, {"error": "busy"}, {"Retry-After": "99999999"})
ONLY_HOOK = """\
campaign: hook-backoff
conversion: {events: [order_placed]}
steps:
  - {channel: webhook, template: t_hook, wait: 24h}
"""


@asynccontextmanager
async def hook_worker(env, settings: Settings, url: str) -> AsyncIterator[None]:  # noqa: ANN001
    hook = WebhookChannel(WebhookChannelSettings(url=url + "/in", secret="s" * 32))
    outbox = OutboxChannel(settings.db_url)
    try:
        async with build_worker(env.client, settings,
                                {**{c: outbox for c in CHANNELS}, "webhook": hook}):
            yield
    finally:
        await hook.aclose()


def _campaign(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "hook", ONLY_HOOK,
                          {**TEMPLATES, "t_hook.txt.j2": "Hi {{ customer.id }}"})


async def _refused_once(settings: Settings, fake: FakeProvider, enrollment_id: str) -> None:
    await eventually(lambda: len(fake.seen) >= 1, "the first request")
    await eventually(lambda: deliveries(settings, enrollment_id).get("0", ("",))[0]
                     == "retrying", "the refused attempt in the ledger")


async def _started(h) -> datetime:  # noqa: ANN001
    return (await h.describe()).start_time


async def test_a_three_year_retry_after_is_capped_at_the_policy_maximum(ts_env, settings,
                                                                         tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    with FakeProvider(Reply(200, {"message_id": "m-1"})).answer(FOREVER) as fake:
        async with hook_worker(ts_env, settings, fake.url):
            _, [e] = await enroll(ts_env.client, settings, _campaign(tmp_path), ["c1"])
            h = handle(ts_env.client, e.id)
            await _refused_once(settings, fake, e.id)
            assert await finish(ts_env, h) == "completed"  # the back-off skipped
            progress = await h.query(CustomerCascade.progress)
            start = await _started(h)
    gap = times(progress)[0] - start
    # honoured (not the policy's 0.05 s first interval), and capped (not three years)
    assert timedelta(seconds=SEND_RETRY_MAX_S - 5) <= gap \
        <= timedelta(seconds=SEND_RETRY_MAX_S + 30), gap
    assert len(fake.seen) == 2 and deliveries(settings, e.id)["0"][0] == "sent"


async def test_a_conversion_during_the_back_off_ends_the_cascade_at_once(ts_env, settings,
                                                                         tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    with FakeProvider(FOREVER) as fake:
        async with hook_worker(ts_env, settings, fake.url):
            _, [e] = await enroll(ts_env.client, settings, _campaign(tmp_path), ["c1"])
            h = handle(ts_env.client, e.id)
            await _refused_once(settings, fake, e.id)
            await convert(ts_env.client, settings, "c1")
            assert await finish(ts_env, h, timeout=30) == "converted"
            progress = await h.query(CustomerCascade.progress)
            ended = (await h.describe()).close_time
            start = await _started(h)
    assert len(fake.seen) == 1  # no attempt after the conversion
    assert [(t.step, t.status, t.reason) for t in progress.timeline] == \
        [("0", "skipped", "converted")]
    assert ended is not None and ended - start < timedelta(seconds=SEND_RETRY_MAX_S / 2)
    assert enrollment(settings, e.id).status == "converted"
    # the refused send is no longer shown waiting for its retry (issue 27)
    assert deliveries(settings, e.id)["0"] == ("skipped", "converted")


async def test_a_stop_during_the_back_off_closes_the_cascade_at_once(ts_env, settings,
                                                                      tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    with FakeProvider(FOREVER) as fake:
        async with hook_worker(ts_env, settings, fake.url):
            run_id, [e] = await enroll(ts_env.client, settings, _campaign(tmp_path), ["c1"])
            h = handle(ts_env.client, e.id)
            await _refused_once(settings, fake, e.id)
            await stop_run(run_id, False, settings, ts_env.client)
            assert await finish(ts_env, h, timeout=30) == "stopped"
            ended = (await h.describe()).close_time
            start = await _started(h)
    assert len(fake.seen) == 1
    assert ended is not None and ended - start < timedelta(seconds=SEND_RETRY_MAX_S / 2)
    assert enrollment(settings, e.id).status == "stopped"
    assert deliveries(settings, e.id)["0"] == ("skipped", "stopped")
