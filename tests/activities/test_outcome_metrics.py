"""omnicascade_messages_total counts each step's outcome once, where deliver_step records
it: a retryable error as `retrying`, the send as `sent`, a settled step found again by a
later attempt not at all, a skip with its reason; and each provider call is timed."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from temporalio.testing import ActivityEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.channels.base import Message, RetryableSendError, SendResult
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll

pytestmark = [pytest.mark.asyncio, pytest.mark.db]
EMAIL = StepPlan("0", 0, "email", "t_email", 86400)


class FlakyOnce(OutboxChannel):
    def __init__(self, db_url: str):
        super().__init__(db_url)
        self.failed = False

    async def send(self, message: Message) -> SendResult:
        if not self.failed:
            self.failed = True
            raise RetryableSendError("503 from the provider")
        return await super().send(message)


def messages(outcome: str, reason: str = "", channel: str = "email") -> float:
    return REGISTRY.get_sample_value("omnicascade_messages_total", {
        "channel": channel, "outcome": outcome, "reason": reason}) or 0.0


def calls() -> float:
    return REGISTRY.get_sample_value("omnicascade_provider_call_seconds_count",
                                     {"channel": "email"}) or 0.0


async def test_each_outcome_is_counted_once(ts_env, settings, campaign_file):
    add_customers(settings, {"id": "c1", **FULL}, {"id": "c2"})
    _, rows = await enroll(ts_env.client, settings, campaign_file, ["c1", "c2"], start=False)
    by_customer = {e.customer_id: e.id for e in rows}
    acts = DeliverActivities(settings, {"email": FlakyOnce(settings.db_url)})
    env = ActivityEnvironment()
    before = (messages("retrying", "provider"), messages("sent"), calls(),
              messages("skipped", "no_address"))
    with pytest.raises(Exception, match="will retry"):
        await env.run(acts.deliver_step, DeliverInput(by_customer["c1"], EMAIL))
    assert (await env.run(acts.deliver_step, DeliverInput(by_customer["c1"], EMAIL))
            ).status == "sent"
    # a later attempt finds it settled (the workflow never heard): not counted again
    assert (await env.run(acts.deliver_step, DeliverInput(by_customer["c1"], EMAIL))
            ).status == "sent"
    assert (await env.run(acts.deliver_step, DeliverInput(by_customer["c2"], EMAIL))
            ).status == "skipped"
    after = (messages("retrying", "provider"), messages("sent"), calls(),
             messages("skipped", "no_address"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 2, 1]
