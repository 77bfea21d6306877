"""Engagement conditions (`steps[].skip_if`) on the time-skipping server: a step whose
customer already engaged with an earlier message of the cascade is skipped with reason
`engaged` and the cascade moves on at once; machine opens never count as opens."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from omnicascade.cascade.feedback import record_feedback
from omnicascade.channels.callbacks import Feedback
from omnicascade.channels.sendgrid_email import event_item
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import Stage
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import (
    cascade_of,
    deliveries,
    outbox,
    times,
)

pytestmark = pytest.mark.db


def engagement_yaml(*skip_if: str) -> str:
    return f"""\
campaign: engaged
trigger: {{event: cart_abandoned}}
conversion: {{events: [order_placed]}}
steps:
  - {{channel: email, template: t_email, wait: 24h}}
  - {{channel: sms,   template: t_sms,   wait: 24h, skip_if: [{", ".join(skip_if)}]}}
  - {{channel: push,  template: t_push}}
"""


def store(*items: Feedback, settings) -> None:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        record_feedback(list(items), session=s)


def sendgrid(delivery_id: str, name: str, at: datetime, n: int, **extra: object) -> Feedback:
    """One SendGrid Event Webhook event as its parser makes it (the signed request itself is
    tested in tests/channels/test_webhooks_sendgrid.py)."""
    return event_item({"email": FULL["email"], "timestamp": int(at.timestamp()),
                       "event": name, "sg_event_id": f"evt-{name}-{n}",
                       "omnicascade_delivery_id": delivery_id, **extra})


async def run_cascade(ts_env, settings, tmp_path, skip_if: tuple[str, ...],  # noqa: ANN001
                      feedback) -> tuple[dict, list[datetime]]:  # noqa: ANN001
    """Enroll one customer, record `feedback(delivery_id, sent_at)` while the cascade waits
    after its email, let it run to the end; its deliveries and when each step happened."""
    campaign = write_campaign(tmp_path / "engaged", engagement_yaml(*skip_if))
    async with cascade_of(ts_env, settings, campaign, [{"id": "e1", **FULL}]) as c:
        [e] = c.rows
        progress = await c.wait("e1", Stage.WAITING, "0")
        store(*feedback(f"{e.id}:0", times(progress)[0]), settings=settings)
        assert await c.finish("e1") == "completed"
        progress = await c.progress("e1")
    return deliveries(settings, e.id), times(progress)


async def test_a_click_before_the_step_skips_it_as_engaged_without_its_wait(
        ts_env, settings, tmp_path):
    def click(delivery_id: str, sent: datetime) -> list[Feedback]:
        return [sendgrid(delivery_id, "delivered", sent + timedelta(seconds=5), 0),
                sendgrid(delivery_id, "click", sent + timedelta(hours=2), 1)]

    d, t = await run_cascade(ts_env, settings, tmp_path, ("clicked",), click)
    assert d == {"0": ("sent", None), "1": ("skipped", "engaged"), "2": ("sent", None)}
    assert [m.channel for m in outbox(settings, "e1")] == ["email", "push"]
    email, sms, push = t
    assert timedelta(hours=24) <= sms - email < timedelta(hours=24, minutes=1)  # its turn
    assert push - sms < timedelta(minutes=1)  # skipped: no 24 h wait after it


async def test_without_the_click_the_step_is_sent_and_waited_for(ts_env, settings, tmp_path):
    def opened(delivery_id: str, sent: datetime) -> list[Feedback]:
        return [sendgrid(delivery_id, "delivered", sent + timedelta(seconds=5), 0),
                sendgrid(delivery_id, "open", sent + timedelta(hours=2), 1)]

    d, t = await run_cascade(ts_env, settings, tmp_path, ("clicked",), opened)
    assert d == {"0": ("sent", None), "1": ("sent", None), "2": ("sent", None)}
    assert [m.channel for m in outbox(settings, "e1")] == ["email", "sms", "push"]
    assert timedelta(hours=24) <= t[2] - t[1] < timedelta(hours=24, minutes=1)


def _apple(delivery_id: str, sent: datetime) -> list[Feedback]:  # MPP: SendGrid flags it
    return [sendgrid(delivery_id, "delivered", sent + timedelta(seconds=5), 0),
            sendgrid(delivery_id, "open", sent + timedelta(minutes=3), 1,
                     sg_machine_open=True)]


def _instant(delivery_id: str, sent: datetime) -> list[Feedback]:  # a scanner, unflagged,
    return [sendgrid(delivery_id, "open", sent + timedelta(seconds=5), 1),  # reported first
            sendgrid(delivery_id, "delivered", sent + timedelta(seconds=5), 0)]


def _human(delivery_id: str, sent: datetime) -> list[Feedback]:
    return [sendgrid(delivery_id, "delivered", sent + timedelta(seconds=5), 0),
            sendgrid(delivery_id, "open", sent + timedelta(minutes=40), 1)]


@pytest.mark.parametrize(("feedback", "sms"), [(_apple, ("sent", None)),
                                               (_instant, ("sent", None)),
                                               (_human, ("skipped", "engaged"))],
                         ids=["sg_machine_open", "within_a_second", "human"])
async def test_machine_opens_do_not_count_for_skip_if_opened(ts_env, settings, tmp_path,
                                                            feedback, sms):
    d, _ = await run_cascade(ts_env, settings, tmp_path, ("opened",), feedback)
    assert d["1"] == sms and d["2"] == ("sent", None)


async def test_delivered_counts_a_machine_open_as_proof_of_delivery(ts_env, settings,
                                                                    tmp_path):
    def apple_only(delivery_id: str, sent: datetime) -> list[Feedback]:
        return [sendgrid(delivery_id, "open", sent + timedelta(minutes=3), 1,
                         sg_machine_open=True)]

    d, _ = await run_cascade(ts_env, settings, tmp_path, ("delivered", "replied"), apple_only)
    assert d["1"] == ("skipped", "engaged")
