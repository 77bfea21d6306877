"""Run control on the time-skipping server with the real worker and activities: stop (mid-wait,
mid-send, with its signal lost), pause across a wait and resume, drain — promise 1's two
guards for a stop, and nothing sent while paused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicascade.cascade.control import pause_run, resume_run, stop_run
from omnicascade.cascade.events import EventIn, process_event, store_event
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.run_views import run_show, status_of
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


def steps(settings, customer_id: str) -> list[str]:  # noqa: ANN001
    return [m.step for m in outbox(settings, customer_id)]


def status(settings, run_id: str) -> str:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return status_of(run_id, session=s)


async def test_stop_mid_wait_ends_cascades_and_cancels_follow_ups(ts_env, settings,
                                                                  campaign_file):
    async with cascade_of(ts_env, settings, campaign_file,
                          [{"id": "waits", **FULL}, {"id": "bought", **FULL}]) as c:
        run_id, rows = c.run_id, c.rows
        await c.wait("waits", Stage.WAITING, "0")
        await c.wait("bought", Stage.WAITING, "0")
        await convert(ts_env.client, settings, "bought")  # its review is due in 3 days
        await c.wait("bought", Stage.FOLLOW_UP_DUE, "ac0")
        await ts_env.sleep(timedelta(hours=12))
        change = await stop_run(run_id, False, settings, ts_env.client)
        assert (change.status, change.ended, change.told) == ("stopped", 1, 2)
        assert await c.finish("waits") == "stopped"
        assert await c.finish("bought") == "converted"
    assert steps(settings, "waits") == ["0"] and steps(settings, "bought") == ["0"]
    row = enrollment(settings, rows[0].id)
    assert (row.status, row.exit_reason, row.active_entry) == ("stopped", "stopped", None)
    assert enrollment(settings, rows[1].id).status == "converted"  # bought: stays a conversion
    assert status(settings, run_id) == "stopped"


async def test_stop_while_a_send_is_in_flight_lets_it_finish_and_nothing_after(
        ts_env, settings, campaign_file):
    gate = GatedChannel(settings.db_url)
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}],
                          channel=gate) as c:
        await asyncio.wait_for(gate.entered.wait(), 20)
        await stop_run(c.run_id, False, settings, ts_env.client)  # committed + signalled mid-send
        gate.release.set()
        assert await c.finish("c1") == "stopped"
    [e] = c.rows
    assert gate.calls == [f"{e.id}:0"] and steps(settings, "c1") == ["0"]
    assert deliveries(settings, c.row("c1").id) == {"0": ("sent", None)}
    assert enrollment(settings, e.id).status == "stopped"


async def test_a_lost_stop_signal_is_caught_by_the_send_time_guard(ts_env, settings,
                                                                   campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("c1", Stage.WAITING, "0")
        change = await stop_run(run_id, False, settings, None)  # Temporal "unreachable"
        assert (change.status, change.temporal, change.told) == ("stopped", False, 0)
        assert await c.finish("c1") == "stopped"  # the next send found the run stopped
    assert deliveries(settings, c.row("c1").id)["1"] == ("skipped", "stopped")
    assert "2" not in deliveries(settings, c.row("c1").id) and steps(settings, "c1") == ["0"]


async def test_pause_across_a_wait_holds_the_due_step_until_resume(ts_env, settings,
                                                                   campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("c1", Stage.WAITING, "0")
        assert (await pause_run(run_id, settings, ts_env.client)).status == "paused"
        await ts_env.sleep(timedelta(hours=30))  # the SMS was due 6 hours ago
        await c.wait("c1", Stage.HELD, "1")
        assert steps(settings, "c1") == ["0"]
        assert deliveries(settings, c.row("c1").id)["1"] == ("deferred", "paused")  # held, not skipped
        with session_scope(settings.db_url) as s:
            assert run_show(run_id, session=s)["steps"][1]["held"] == 1
        assert (await resume_run(run_id, settings, ts_env.client)).status == "listening"
        await c.wait("c1", Stage.WAITING, "1")  # at once, no time skipped
        assert await c.finish("c1") == "completed"
        progress = await c.progress("c1")
    assert steps(settings, "c1") == ["0", "1", "2", "3"]
    sent = {x.step: t for x, t in zip(progress.timeline, times(progress), strict=True)
            if x.status == "sent"}
    assert sent["1"] - sent["0"] >= timedelta(hours=30)  # went out on resume, not before


async def test_a_conversion_during_the_pause_means_the_held_step_never_goes_out(
        ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("c1", Stage.WAITING, "0")
        await pause_run(run_id, settings, ts_env.client)
        await ts_env.sleep(timedelta(hours=25))
        await c.wait("c1", Stage.HELD, "1")
        await convert(None, settings, "c1", signal=False)  # only the database knows
        await resume_run(run_id, settings, ts_env.client)  # re-checked: nothing goes out
        assert await c.finish("c1") == "converted"
    assert deliveries(settings, c.row("c1").id)["1"] == ("skipped", "converted")
    assert steps(settings, "c1") == ["0", "ac0"]


async def test_a_lost_pause_signal_still_holds_the_send(ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("c1", Stage.WAITING, "0")
        await pause_run(run_id, settings, None)  # nobody told: the guard holds the send
        await ts_env.sleep(timedelta(hours=25))
        await c.wait("c1", Stage.HELD, "1")
        assert steps(settings, "c1") == ["0"]
        await resume_run(run_id, settings, None)  # nobody told: the recheck sends it
        assert await c.finish("c1") == "completed"
    assert steps(settings, "c1") == ["0", "1", "2", "3"]


async def test_a_long_pause_costs_a_few_checks_a_day_not_one_every_few_minutes(
        ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "c1", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("c1", Stage.WAITING, "0")
        await pause_run(run_id, settings, ts_env.client)
        await ts_env.sleep(timedelta(days=10))
        await c.wait("c1", Stage.HELD, "1")
        await resume_run(run_id, settings, ts_env.client)
        assert await c.finish("c1") == "completed"
        history = await c.handle("c1").fetch_history()
        progress = await c.progress("c1")
    attempts = sum(ev.HasField("activity_task_scheduled_event_attributes")
                   for ev in history.events)
    assert attempts < 60  # 4 sends + ≈ 4 checks a day; every 5 minutes would be 2,800
    assert [(x.step, x.status) for x in progress.timeline] == [
        ("0", "sent"), ("1", "deferred"), ("1", "sent"), ("2", "sent"), ("3", "sent")]


async def test_drain_enrolls_nobody_new_and_lets_cascades_finish(ts_env, settings,
                                                                 campaign_file):
    add_customers(settings, {"id": "late", **FULL})
    async with cascade_of(ts_env, settings, campaign_file, [{"id": "early", **FULL}]) as c:
        run_id = c.run_id
        await c.wait("early", Stage.WAITING, "0")
        change = await stop_run(run_id, True, settings, ts_env.client)
        assert (change.status, change.ended, change.cascades) == ("draining", 0, [])
        with session_scope(settings.db_url) as s:
            store_event(EventIn(event_id="cart-late", customer_id="late",
                                type="cart_abandoned"), session=s)
        assert await process_event(ts_env.client, settings, "cart-late") == 0
        assert status(settings, run_id) == "draining"
        assert await c.finish("early") == "completed"  # finished normally
    assert steps(settings, "early") == ["0", "1", "2", "3"] and outbox(settings, "late") == []
    with session_scope(settings.db_url) as s:
        assert s.scalars(select(Enrollment.customer_id)).all() == ["early"]
        assert s.get(Run, run_id).status == "draining"  # written lazily …
    assert status(settings, run_id) == "stopped"      # … shown as it is
    again = await stop_run(run_id, False, settings, None)  # the next command writes it
    assert (again.status, again.changed) == ("stopped", False)
    with session_scope(settings.db_url) as s:
        assert s.get(Run, run_id).status == "stopped"
