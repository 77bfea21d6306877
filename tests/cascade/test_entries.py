"""Entries on the time-skipping server: a customer enters again after their cascade ended,
one cascade per cart (trigger.key), keyed conversions, exit events, reentry rules.

Events go through the API's own path (store_event, then process_event); the worker is the
real one against a real database and the outbox provider.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from temporalio.service import RPCError

from omnicascade.cascade.events import EventIn, process_event, store_event, stored_answer
from omnicascade.cascade.temporal import workflow_id
from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import Stage
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import (
    add_customers,
    convert,
    enroll,
    finish,
    handle,
    outbox,
    running_worker,
    wait_state,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.db]

KEYED = """\
campaign: carts
trigger: {{event: cart_abandoned, key: cart_id}}
reentry: {reentry}
conversion: {{events: [order_placed], lookback: 1h, match: {match}}}
exit: {{events: [cart_emptied]}}
steps:
  - {{channel: email, template: t_email, wait: 24h}}
  - {{channel: sms,   template: t_sms,   wait: 24h}}
after_conversion:
  - {{channel: email, template: review, delay: 3d}}
"""


def campaign(tmp_path: Path, *, reentry: str = "after_exit", match: str = "key") -> Path:
    return write_campaign(tmp_path / "carts", KEYED.format(reentry=reentry, match=match))


async def event(env: Any, settings: Any, event_id: str, type_: str = "cart_abandoned",
                customer: str = "c1", **data: Any) -> dict[str, Any]:
    with session_scope(settings.db_url) as s:
        store_event(EventIn(event_id=event_id, customer_id=customer, type=type_, data=data),
                    session=s)
    await process_event(env.client, settings, event_id)
    return stored_answer(settings.db_url, event_id)


def cascades(settings: Any, customer: str = "c1") -> list[Enrollment]:
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(Enrollment).where(Enrollment.customer_id == customer)
                              .order_by(Enrollment.enrolled_at, Enrollment.id)))
        s.expunge_all()
        return rows


async def leave_nothing_running(env: Any, settings: Any) -> None:
    """End the test's cascades still waiting, while the worker runs: the time-skipping
    server is shared, and a cascade left mid-activity would hold its clock still for the
    next test."""
    for e in cascades(settings) + cascades(settings, "c2"):
        if e.status in ("pending", "active"):
            h = handle(env.client, e.id)
            await wait_state(h, Stage.WAITING)
            with contextlib.suppress(RPCError):
                await h.terminate("test over")


def by_key(settings: Any) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    for e in cascades(settings):
        out.setdefault(e.entry_key, []).append(e.status)
    return out


async def test_a_second_cart_enters_and_the_same_cart_enters_again_after_exit(
        ts_env, settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    file = campaign(tmp_path)
    async with running_worker(ts_env, settings):
        await enroll(ts_env.client, settings, file, [])  # the campaign listens
        assert (await event(ts_env, settings, "e1", cart_id="A"))["enrolled"] == 1
        again = await event(ts_env, settings, "e2", cart_id="A")  # the same cart, still live
        assert again["enrolled"] == 0
        assert again["not_enrolled"] == [{"campaign": "carts",
                                          "reason": "already in a live cascade of this "
                                                    "campaign"}]
        [where] = again["campaigns"]  # the entry it is about, in words (issue 27)
        assert (where["campaign"], where["enrolled"]) == ("carts", False)
        assert where["reason"] == "already in a live cascade of this campaign for cart_id A"
        assert (await event(ts_env, settings, "e3", cart_id="B"))["enrolled"] == 1
        first = cascades(settings)[0]
        assert await finish(ts_env, ts_env.client.get_workflow_handle(
            workflow_id(first.id))) == "completed"
        # a month later, cart A is abandoned again: a new cascade
        assert (await event(ts_env, settings, "e4", cart_id="A"))["enrolled"] == 1
        missing = await event(ts_env, settings, "e5")  # no cart_id in the data
        await leave_nothing_running(ts_env, settings)
    assert missing["enrolled"] == 0 and "no data.cart_id" in missing["not_enrolled"][0]["reason"]
    statuses = by_key(settings)
    assert statuses["A"][0] == "completed" and len(statuses["A"]) == 2
    assert len(statuses["B"]) == 1


@pytest.mark.parametrize("match", ["key", "customer"])
async def test_a_keyed_conversion_stops_only_its_cart_and_customer_match_stops_all(
        ts_env, settings, tmp_path, match):
    add_customers(settings, {"id": "c1", **FULL})
    file = campaign(tmp_path, match=match)
    async with running_worker(ts_env, settings):
        await enroll(ts_env.client, settings, file, [])
        await event(ts_env, settings, "e1", cart_id="A")
        await event(ts_env, settings, "e2", cart_id="B")
        body = await convert(ts_env.client, settings, "c1", "o1")  # no key value: all
        assert body["stopped"] == 2
        for e in cascades(settings):
            assert await finish(ts_env, handle(ts_env.client, e.id)) == "converted"
        add_customers(settings, {"id": "c2", **FULL})
        await event(ts_env, settings, "e3", customer="c2", cart_id="A")
        await event(ts_env, settings, "e4", customer="c2", cart_id="B")
        with session_scope(settings.db_url) as s:
            from omnicascade.cascade.conversions import ConversionIn, record_conversion
            outcome = record_conversion(ConversionIn(event_id="o2", type="order_placed",
                                                     customer_id="c2",
                                                     data={"cart_id": "A"}), session=s)
        assert outcome.stopped == (1 if match == "key" else 2)
        rows = cascades(settings, "c2")
        ended = {e.entry_key for e in rows if e.conversion_event_id == "o2"}
        assert ended == ({"A"} if match == "key" else {"A", "B"})
        from omnicascade.cascade.conversions import tell_cascades
        await tell_cascades(ts_env.client, outcome)
        for e in rows:
            h = ts_env.client.get_workflow_handle(workflow_id(e.id))
            expected = "converted" if e.entry_key in ended else "completed"
            assert await finish(ts_env, h) == expected
        await leave_nothing_running(ts_env, settings)
    sent = [(m.step, m.run_id) for m in outbox(settings, "c2")]
    # the cart that did not convert got both steps; the converted one its review only
    assert sum(1 for step, _ in sent if step == "1") == (1 if match == "key" else 0)


async def test_an_exit_event_ends_the_cascade_as_exited_without_follow_ups(
        ts_env, settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    file = campaign(tmp_path)
    async with running_worker(ts_env, settings):
        await enroll(ts_env.client, settings, file, [])
        await event(ts_env, settings, "e1", cart_id="A")
        await event(ts_env, settings, "e2", cart_id="B")
        for e in cascades(settings):
            await wait_state(handle(ts_env.client, e.id), Stage.WAITING, "0")
        answer = await event(ts_env, settings, "x1", "cart_emptied", cart_id="A")
        assert answer["exited"] == 1 and answer["enrolled"] == 0
        # no trigger listens to it, but it did not go nowhere: said so (issue 27)
        assert answer["campaigns"] == [] and "it is an exit event" in answer["note"]
        a, b = cascades(settings)
        assert await finish(ts_env, ts_env.client.get_workflow_handle(
            workflow_id(a.id))) == "exited"
        assert await finish(ts_env, ts_env.client.get_workflow_handle(
            workflow_id(b.id))) == "completed"
        await leave_nothing_running(ts_env, settings)
    a, b = cascades(settings)
    assert (a.status, a.exit_reason, a.converted_at) == ("exited", "cart_emptied", None)
    steps_a = [m.step for m in outbox(settings, "c1") if m.delivery_id.startswith(a.id)]
    assert steps_a == ["0"]  # nothing after the exit, and no review: it did not convert


@pytest.mark.parametrize("reentry", ["never", "7d"])
async def test_reentry_never_and_a_minimum_gap(ts_env, settings, tmp_path, reentry):
    add_customers(settings, {"id": "c1", **FULL})
    file = campaign(tmp_path, reentry=reentry)
    async with running_worker(ts_env, settings):
        await enroll(ts_env.client, settings, file, [])
        await event(ts_env, settings, "e1", cart_id="A")
        [first] = cascades(settings)
        assert await finish(ts_env, ts_env.client.get_workflow_handle(
            workflow_id(first.id))) == "completed"
        refused = await event(ts_env, settings, "e2", cart_id="A")
        assert refused["enrolled"] == 0
        assert refused["not_enrolled"][0]["reason"].startswith(f"reentry: {reentry}")
        assert refused["campaigns"][0]["reason"].startswith(f"reentry: {reentry}")
        assert (await event(ts_env, settings, "e3", cart_id="B"))["enrolled"] == 1  # another cart
        with session_scope(settings.db_url) as s:  # eight days pass
            s.execute(update(Enrollment).where(Enrollment.id == first.id).values(
                enrolled_at=first.enrolled_at - timedelta(days=8)))
        later = await event(ts_env, settings, "e4", cart_id="A")
        await leave_nothing_running(ts_env, settings)
    assert later["enrolled"] == (0 if reentry == "never" else 1)


async def test_the_answer_says_a_recent_conversion_kept_the_customer_out(
        ts_env, settings, tmp_path):
    """Issue 27 (4): `enrolled: 0` with the reason, per campaign."""
    add_customers(settings, {"id": "c1", **FULL})
    file = campaign(tmp_path)
    async with running_worker(ts_env, settings):
        run_id, _ = await enroll(ts_env.client, settings, file, [])
        await convert(ts_env.client, settings, "c1")
        answer = await event(ts_env, settings, "e1", cart_id="A")
        await leave_nothing_running(ts_env, settings)
    assert answer["enrolled"] == 0 and "note" not in answer
    assert answer["campaigns"] == [{"campaign": "carts", "run_id": run_id, "enrolled": False,
                                    "status": "listening", "reason": "converted within the "
                                    "lookback (1h): not enrolled"}]
