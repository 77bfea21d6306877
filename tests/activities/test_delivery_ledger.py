"""Promise 2 (at most one delivery per enrollment and step) and the error classes of docs/architecture.md §1,
exercised through the real deliver_step activity and, where timing matters, a real cascade."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.customers.consent import suppress
from omnicascade.db.models import Delivery
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign
from tests.helpers.cascades import (
    add_customers,
    cascade_of,
    deliveries,
    enroll,
    outbox,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.db]
EMAIL = StepPlan("0", 0, "email", "t_email", 86400)


class ScriptedChannel(OutboxChannel):
    """The outbox provider preceded by a scripted list of failures."""

    def __init__(self, db_url: str, failures: list[Exception]):
        super().__init__(db_url)
        self.failures, self.calls = list(failures), 0

    async def send(self, message: Message) -> SendResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().send(message)


def _acts(settings, channel) -> DeliverActivities:  # noqa: ANN001
    return DeliverActivities(settings, {c: channel for c in ("email", "sms", "telegram", "push")})


async def _enrolled(ts_env, settings, campaign_file, customer=None):  # noqa: ANN001, ANN202
    add_customers(settings, customer or {"id": "c1", **FULL})
    _, [e] = await enroll(ts_env.client, settings, campaign_file, ["c1"], start=False)
    return e


async def test_second_attempt_returns_the_stored_result_without_sending(ts_env, settings,
                                                                        campaign_file):
    e = await _enrolled(ts_env, settings, campaign_file)
    channel = ScriptedChannel(settings.db_url, [])
    acts, env = _acts(settings, channel), ActivityEnvironment()
    first = await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
    again = await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
    assert first.status == again.status == "sent"
    assert first.provider_message_id == again.provider_message_id
    assert channel.calls == 1 and len(outbox(settings, "c1")) == 1


async def test_attempt_that_died_mid_call_is_marked_unknown_and_never_resent(
        ts_env, settings, campaign_file):
    e = await _enrolled(ts_env, settings, campaign_file)
    with session_scope(settings.db_url) as s:  # what a worker killed mid-provider-call leaves
        s.add(Delivery(id=f"{e.id}:0", enrollment_id=e.id, run_id=e.run_id, customer_id="c1",
                       step_key="0", step_index=0, phase="cascade", channel="email",
                       template="t_email", status="sending", attempts=1))
    channel = ScriptedChannel(settings.db_url, [])
    result = await ActivityEnvironment().run(_acts(settings, channel).deliver_step,
                                             DeliverInput(e.id, EMAIL))
    assert result.status == "unknown" and "not resent" in result.reason
    assert channel.calls == 0 and outbox(settings) == []


async def test_clearly_not_sent_errors_retry_and_deliver_once(ts_env, settings, campaign_file):
    e = await _enrolled(ts_env, settings, campaign_file)
    channel = ScriptedChannel(settings.db_url, [RetryableSendError("connection refused"),
                                                RetryableSendError("429", retry_after=0.01)])
    acts, env = _acts(settings, channel), ActivityEnvironment()
    for _ in range(2):
        with pytest.raises(Exception, match="will retry"):
            await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
        assert deliveries(settings, e.id)["0"][0] == "retrying"
    result = await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
    assert result.status == "sent" and channel.calls == 3
    assert len(outbox(settings, "c1")) == 1


async def test_ambiguous_error_is_unknown_not_retried(ts_env, settings, campaign_file):
    e = await _enrolled(ts_env, settings, campaign_file)
    channel = ScriptedChannel(settings.db_url, [TimeoutError("read timed out")])
    acts, env = _acts(settings, channel), ActivityEnvironment()
    result = await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
    assert result.status == "unknown" and "timed out" in result.reason
    again = await env.run(acts.deliver_step, DeliverInput(e.id, EMAIL))
    assert again.status == "unknown" and channel.calls == 1


async def test_suppressed_address_is_skipped(ts_env, settings, campaign_file):
    e = await _enrolled(ts_env, settings, campaign_file)
    with session_scope(settings.db_url) as s:
        suppress("email", FULL["email"], "unsubscribed", session=s)
    channel = ScriptedChannel(settings.db_url, [])
    result = await ActivityEnvironment().run(_acts(settings, channel).deliver_step,
                                             DeliverInput(e.id, EMAIL))
    assert (result.status, result.reason) == ("skipped", "unsubscribed")
    assert channel.calls == 0


async def test_permanent_failure_moves_to_next_channel_at_once(ts_env, settings, campaign_file):
    channel = ScriptedChannel(settings.db_url, [PermanentSendError("bounced", suppress=True)])
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}],
                          channel=channel) as c:
        assert await c.finish("c1") == "completed"
        progress = await c.progress("c1")
    [e] = c.rows
    assert deliveries(settings, e.id)["0"] == ("failed", "bounced")
    t = [datetime.fromisoformat(x.at) for x in progress.timeline]
    assert t[1] - t[0] < timedelta(minutes=1)  # SMS right after the bounce, no 24h wait
    # the bounced address is suppressed for every campaign from now on
    e2 = (await enroll(ts_env.client, settings, campaign_file, ["c1"], start=False))[1][0]
    result = await ActivityEnvironment().run(_acts(settings, channel).deliver_step,
                                             DeliverInput(e2.id, EMAIL))
    assert (result.status, result.reason) == ("skipped", "unsubscribed")


async def test_retries_exhausted_record_failure_and_cascade_moves_on(ts_env, settings,
                                                                     campaign_file):
    settings = settings.model_copy(update={"send_max_attempts": 3})
    channel = ScriptedChannel(settings.db_url, [RetryableSendError("503")] * 3)
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}],
                          channel=channel) as c:
        assert await c.finish("c1") == "completed"
    assert channel.calls == 6  # 3 attempts on the email, then sms, telegram, push
    assert [m.channel for m in outbox(settings, "c1")] == ["sms", "telegram", "push"]


async def test_template_error_fails_the_step_not_the_cascade(ts_env, settings, tmp_path):
    broken = dict(TEMPLATES, **{"t_sms.txt.j2": "Hi {{ customer.nickname }}"})
    campaign = write_campaign(tmp_path / "broken", templates=broken)
    async with cascade_of(ts_env, settings, campaign, [{"id": "c1", **FULL}],
                          channel=OutboxChannel(settings.db_url)) as c:
        assert await c.finish("c1") == "completed"
    status, reason = deliveries(settings, c.row("c1").id)["1"]
    assert status == "failed" and "nickname" in reason
    assert [m.channel for m in outbox(settings, "c1")] == ["email", "telegram", "push"]
