"""Provider limits that hold across workers (channels/queues.py): a channel with
OMNICASCADE_<CHANNEL>_RATE sends on its own task queue, which every worker polls with that
rate as the queue's server-side dispatch limit. The rate itself is measured by
`python -m bench.ratelimit` (two worker processes, 200 messages; README, Benchmark) — a
figure, not a timed test."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest

from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.queues import send_queue, send_queues
from omnicascade.config import Settings, load_settings
from omnicascade.errors import ConfigError
from omnicascade.runtime.worker import build_workers
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.types import PATCH_SEND_QUEUES
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, deliveries, enroll, finish, handle

YAML = """\
campaign: paced
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 1h}
  - {channel: sms,   template: t_sms}
"""


@pytest.fixture
def sms_rate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMNICASCADE_SMS_RATE", "5")  # read by the `settings` fixture
    yield
    monkeypatch.delenv("OMNICASCADE_SMS_RATE")


def test_only_a_channel_with_a_rate_gets_a_queue_of_its_own() -> None:
    rates = Settings(task_queue="tq", sms_rate=5, whatsapp_rate=0.5)
    assert send_queue(rates, "sms") == "tq-send-sms"
    assert send_queue(rates, "email") is None
    assert send_queues(rates) == {"sms": ("tq-send-sms", 5.0),
                                        "whatsapp": ("tq-send-whatsapp", 0.5)}


def test_a_bad_rate_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNICASCADE_SMS_RATE", "fast")
    with pytest.raises(ConfigError, match="sms_rate"):
        load_settings()


async def scheduled_queues(client, workflow_id: str) -> tuple[list[str], set[str]]:  # noqa: ANN001
    """Each send's task queue in the order scheduled, and the patches the history recorded."""
    history = json.loads((await client.get_workflow_handle(workflow_id)
                          .fetch_history()).to_json())
    queues, patches = [], set()
    for event in history["events"]:
        if "activityTaskScheduledEventAttributes" in event:
            attrs = event["activityTaskScheduledEventAttributes"]
            if attrs["activityType"]["name"] == "deliver_step":
                queues.append(attrs["taskQueue"]["name"])
        marker = event.get("markerRecordedEventAttributes") or {}
        if marker.get("markerName") == "core_patch":
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            patches.add(json.loads(base64.b64decode(data))["id"])
    return queues, patches


@pytest.mark.usefixtures("sms_rate")
async def test_sms_sends_run_on_the_sms_queue_and_email_on_the_cascades(
        ts_env, settings, tmp_path) -> None:  # noqa: ANN001
    campaign = write_campaign(tmp_path / "paced", YAML)
    add_customers(settings, {"id": "q1", **FULL})
    outbox = OutboxChannel(settings.db_url)
    workers = build_workers(ts_env.client, settings, {c: outbox for c in CHANNELS})
    assert [w.task_queue for w in workers] == [settings.task_queue,
                                               f"{settings.task_queue}-send-sms"]
    async with workers[0], workers[1]:
        _, [e] = await enroll(ts_env.client, settings, campaign, ["q1"])
        h = handle(ts_env.client, e.id)
        assert await finish(ts_env, h) == "completed"
    assert deliveries(settings, e.id) == {"0": ("sent", None), "1": ("sent", None)}
    queues, patches = await scheduled_queues(ts_env.client, h.id)
    assert queues == [settings.task_queue, f"{settings.task_queue}-send-sms"]
    assert PATCH_SEND_QUEUES in patches


@pytest.mark.usefixtures("sms_rate")
async def test_without_a_worker_on_the_sms_queue_no_sms_goes_out(
        dev_env, settings, tmp_path) -> None:  # noqa: ANN001
    """The main worker does not take the SMS queue's work: the limit cannot be bypassed by
    a worker that was configured without the rate. (On the dev server: an activity nobody
    polls would hold the time-skipping server's clock for every later test.)"""
    campaign = write_campaign(tmp_path / "paced", YAML.replace("wait: 1h", "wait: 0s"))
    add_customers(settings, {"id": "q2", **FULL})
    outbox = OutboxChannel(settings.db_url)
    main = build_workers(dev_env.client, settings, {c: outbox for c in CHANNELS})[0]
    async with main:
        _, [e] = await enroll(dev_env.client, settings, campaign, ["q2"])
        for _ in range(100):
            if deliveries(settings, e.id).get("0") == ("sent", None):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        assert deliveries(settings, e.id) == {"0": ("sent", None)}
        await handle(dev_env.client, e.id).terminate("test over")
