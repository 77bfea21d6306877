"""CustomerCascade on the time-skipping test server: real 24h/3d waits take milliseconds.
Activities are the real ones against a real SQLite database and the outbox provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from omnicascade.cascade.conversions import ConversionOutcome, tell_cascades
from omnicascade.db.models import ConversionEvent
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import Stage
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import (
    GatedChannel,
    add_customers,
    cascade_of,
    convert,
    deliveries,
    enrollment,
    outbox,
    times,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.db]


async def test_all_four_steps_sent_when_nobody_converts(ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file,
                          [{"id": "c1", **FULL, "attributes": {"first_name": "Ada"}}]) as c:
        assert await c.finish("c1") == "completed"
        progress = await c.progress("c1")
    [e] = c.rows
    assert [m.channel for m in outbox(settings, "c1")] == ["email", "sms", "telegram", "push"]
    at = times(progress)
    gaps = [(b - a) for a, b in zip(at, at[1:])]
    assert all(abs(g - timedelta(hours=24)) < timedelta(seconds=5) for g in gaps), gaps
    assert outbox(settings, "c1")[0].subject == "Hi Ada"
    row = enrollment(settings, e.id)
    assert row.status == "completed" and row.converted_at is None and row.finished_at


@pytest.mark.parametrize("converts_after", [0, 1, 2])
async def test_conversion_during_each_wait_stops_the_rest(ts_env, settings, campaign_file,
                                                          converts_after):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        for step in range(converts_after + 1):
            await c.wait("c1", Stage.WAITING, str(step))
            if step < converts_after:
                await ts_env.sleep(timedelta(hours=24, seconds=1))
        await ts_env.sleep(timedelta(hours=12))  # mid-wait
        body = await convert(ts_env.client, settings, "c1")
        assert body["stopped"] == 1
        assert await c.finish("c1") == "converted"
    [e] = c.rows
    sent = [m.channel for m in outbox(settings, "c1") if m.step.isdigit()]
    assert sent == ["email", "sms", "telegram"][:converts_after + 1]
    assert [m.step for m in outbox(settings, "c1") if not m.step.isdigit()] == ["ac0"]
    assert enrollment(settings, e.id).status == "converted"


async def test_conversion_before_entry_within_lookback_excludes(ts_env, settings,
                                                                campaign_file):
    add_customers(settings, {"id": "early", **FULL}, {"id": "long-ago", **FULL})
    now = datetime.now(UTC)
    await convert(None, settings, "early", "o-early", occurred_at=now - timedelta(minutes=5))
    await convert(None, settings, "long-ago", "o-old", occurred_at=now - timedelta(hours=2))
    async with cascade_of(ts_env, settings, campaign_file, ["early", "long-ago"]) as c:
        by = {r.customer_id: r for r in c.rows}
        assert by["early"].status == "excluded" and by["early"].exit_reason == "converted"
        assert by["long-ago"].status == "pending"  # bought outside the 1h look-back
        await ts_env.sleep(timedelta(seconds=1))
        assert await c.finish("long-ago") == "completed"
    assert outbox(settings, "early") == []  # no messages, no follow-up
    assert len(outbox(settings, "long-ago")) == 4


async def test_conversion_while_send_in_flight_completes_that_send_only(ts_env, settings,
                                                                        campaign_file):
    gate = GatedChannel(settings.db_url)
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}],
                          channel=gate) as c:
        await asyncio.wait_for(gate.entered.wait(), 20)
        await convert(ts_env.client, settings, "c1")  # recorded + signalled mid-send
        gate.release.set()
        assert await c.finish("c1") == "converted"
    steps = [m.step for m in outbox(settings, "c1")]
    assert steps == ["0", "ac0"]  # the in-flight email completed; nothing else but the review


async def test_duplicate_conversion_events_have_one_effect(ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        await c.wait("c1", Stage.WAITING, "0")
        first = await convert(ts_env.client, settings, "c1", "dup-1")
        second = await convert(ts_env.client, settings, "c1", "dup-1")
        assert first == second == {"event_id": "dup-1", "customer_id": "c1", "stopped": 1,
                                  "matched": True}
        assert await c.finish("c1") == "converted"
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(ConversionEvent)) == 1
    assert [m.step for m in outbox(settings, "c1")] == ["0", "ac0"]  # review sent once


async def test_missing_addresses_are_skipped_without_waiting(ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file,
                          [{"id": "c1", "email": "a@example.com", "push_token": "tok"}]) as c:
        assert await c.finish("c1") == "completed"
        progress = await c.progress("c1")
    [e] = c.rows
    assert deliveries(settings, e.id) == {"0": ("sent", None), "1": ("skipped", "no_address"),
                                          "2": ("skipped", "no_address"), "3": ("sent", None)}
    t = times(progress)
    # only the email's 24h wait, not 72h: skipped steps do not wait
    assert abs((t[3] - t[0]) - timedelta(hours=24)) < timedelta(seconds=5)


async def test_after_conversion_follow_up_sent_once_after_its_delay(ts_env, settings,
                                                                    campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        await c.wait("c1", Stage.WAITING, "0")
        await convert(ts_env.client, settings, "c1")
        assert await c.finish("c1") == "converted"
        progress = await c.progress("c1")
    reviews = [m for m in outbox(settings, "c1") if m.step == "ac0"]
    assert len(reviews) == 1 and reviews[0].subject == "How was it?"
    t = times(progress)
    assert t[-1] - t[0] >= timedelta(days=3)


async def test_guard_1_signal_alone_stops_the_cascade(ts_env, settings, campaign_file):
    """No conversion row at all: the workflow flag alone stops the loop mid-wait."""
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        await c.wait("c1", Stage.WAITING, "0")
        await tell_cascades(ts_env.client, ConversionOutcome("sig-only", "c1", 1, False,
                                                             [c.row("c1").id], "order_placed"))
        assert await c.finish("c1") == "converted"
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(ConversionEvent)) == 0
    assert [m.step for m in outbox(settings, "c1")] == ["0", "ac0"]


async def test_guard_2_database_alone_stops_the_next_send(ts_env, settings, campaign_file):
    """The conversion row is written but no signal is ever delivered: the send-time
    re-check still skips every later step."""
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        await c.wait("c1", Stage.WAITING, "0")
        await convert(None, settings, "c1", signal=False)
        assert await c.finish("c1") == "converted"
    [e] = c.rows
    assert deliveries(settings, e.id)["1"] == ("skipped", "converted")
    assert "2" not in deliveries(settings, e.id)
    assert [m.step for m in outbox(settings, "c1")] == ["0", "ac0"]


async def test_conversion_type_outside_campaign_events_does_not_stop(ts_env, settings,
                                                                     campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        await c.wait("c1", Stage.WAITING, "0")
        body = await convert(ts_env.client, settings, "c1", type_="newsletter_signup")
        assert body["stopped"] == 0
        assert await c.finish("c1") == "completed"
    assert len(outbox(settings, "c1")) == 4
