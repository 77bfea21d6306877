"""Issue 27 (1, 2): a frequency cap spaces a cascade out instead of burning it, and an
ended cascade shows nothing pending — on the time-skipping server, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from omnicascade.campaign.model import FrequencyCap
from omnicascade.cascade.decision import Defer, Recipient, Situation, Skip, decide
from omnicascade.cli.display import _reasons
from omnicascade.clock import now_utc
from omnicascade.db.models import Delivery
from omnicascade.db.session import session_scope
from omnicascade.reports.customers import customer_show
from omnicascade.reports.outbox import deferred_note
from omnicascade.reports.run_views import run_show
from omnicascade.vocabulary import SkipReason
from omnicascade.workflows.types import Stage
from tests.helpers.campaigns import CASCADE_YAML, FULL, write_campaign
from tests.helpers.cascades import (
    add_customers,
    cascade_of,
    convert,
    deliveries,
    outbox,
    times,
    wait_state,
)
from tests.helpers.cli import home_env, run_cli

pytestmark = pytest.mark.db

STEPS_ONLY = CASCADE_YAML.replace("after_conversion:\n  - {channel: email, template: review, "
                                  "delay: 3d}\n", "")
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _capped(**cap: object) -> Situation:
    """A customer at a cap of 4 per 24 h whose window admits one more in 5 h."""
    return Situation("email", Recipient({"email": "a@example.com"}), AT,
                     frequency_cap=FrequencyCap(max=4, per="24h", **cap),  # type: ignore[arg-type]
                     sends_in_cap_window=4, cap_admits_at=AT + timedelta(hours=5))


def test_a_capped_send_is_deferred_until_the_window_admits_it():
    assert decide(_capped()) == Defer(AT + timedelta(hours=5), SkipReason.FREQUENCY_CAP)
    assert decide(_capped(on_cap="skip")) == Skip(SkipReason.FREQUENCY_CAP)
    # past max_delay (counted from when the step came due) it is skipped
    assert decide(_capped(max_delay="4h")) == Skip(SkipReason.FREQUENCY_CAP)
    late = Situation(**{**_capped().__dict__, "due": AT - timedelta(hours=20)})
    assert decide(late) == Skip(SkipReason.FREQUENCY_CAP)


@pytest.mark.parametrize("cap", ["{max: 2, per: 1d, on_cap: wait}",
                                 "{max: 2, per: 1d, max_delay: 31d}"])
def test_on_cap_and_max_delay_are_validated(cap: str):
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="on_cap|max_delay"):
        FrequencyCap.model_validate(yaml.safe_load(cap))


async def _earlier_sends(env, settings, customer_id: str, n: int) -> None:  # noqa: ANN001
    """`n` messages of another campaign sent to the customer an hour ago, on the server's
    clock (the one the send-time guards read; it runs ahead of the wall clock once a test
    skipped time)."""
    now = (await env.get_current_time()).astimezone(UTC).replace(tzinfo=None)
    at = max(now, now_utc()) - timedelta(hours=1)
    with session_scope(settings.db_url) as s:
        for i in range(n):
            s.add(Delivery(id=f"other-{customer_id}-{i}", enrollment_id="other",
                           run_id="other", customer_id=customer_id, step_key="0",
                           step_index=0, phase="cascade", channel="email", template="t",
                           status="sent", created_at=at, sending_at=at, sent_at=at))


async def test_a_customer_at_the_cap_gets_the_steps_deferred_not_burned(ts_env, settings,
                                                                        tmp_path):
    campaign = write_campaign(tmp_path / "cap", STEPS_ONLY + "frequency_cap: {max: 4, per: 24h}\n")
    add_customers(settings, {"id": "f1", **FULL})
    await _earlier_sends(ts_env, settings, "f1", 4)
    async with cascade_of(ts_env, settings, campaign, ["f1"]) as c:
        await wait_state(c.handle("f1"), Stage.DEFERRED, "0")
        assert deliveries(settings, c.row("f1").id)["0"] == ("deferred", "frequency_cap")
        with session_scope(settings.db_url) as s:
            steps = run_show(c.run_id, session=s)["steps"]
        assert (steps[0]["capped"], steps[0]["deferred"]) == (1, 0)
        assert "deferred by cap 1" in _reasons(steps[0])  # apart from quiet hours
        assert await c.finish("f1") == "completed"
        progress = await c.progress("f1")
    d = deliveries(settings, c.row("f1").id)
    assert [d[k] for k in "0123"] == [("sent", None)] * 4
    assert len(outbox(settings, "f1")) == 4
    t = times(progress)
    # deferred until the oldest earlier send left the 24 h window (an hour ago + 24 h)
    assert [x.status for x in progress.timeline][:2] == ["deferred", "sent"]
    assert timedelta(hours=22) < t[1] - t[0] <= timedelta(hours=23, minutes=1)


async def test_a_step_skipped_for_the_cap_keeps_the_cascades_spacing(ts_env, settings,
                                                                     tmp_path):
    campaign = write_campaign(tmp_path / "cap", STEPS_ONLY
                              + "frequency_cap: {max: 1, per: 36h, on_cap: skip}\n")
    add_customers(settings, {"id": "f2", **FULL})
    await _earlier_sends(ts_env, settings, "f2", 1)
    async with cascade_of(ts_env, settings, campaign, ["f2"]) as c:
        assert await c.finish("f2") == "completed"
        progress = await c.progress("f2")
    d = deliveries(settings, c.row("f2").id)
    # on_cap: skip still skips; the earlier send leaves the 36 h window before step 3
    assert d["0"] == d["1"] == ("skipped", "frequency_cap")
    assert d["2"] == d["3"] == ("sent", None)
    t = times(progress)
    # each step is due its own 24 h wait after the skipped step, not at once
    for gap in (t[1] - t[0], t[2] - t[1]):
        assert timedelta(hours=24) - timedelta(minutes=1) <= gap <= timedelta(hours=24,
                                                                             minutes=1)


def _quiet_now(now: datetime) -> str:
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    return f"timezone: UTC\nquiet_hours: {{start: \"{start:%H:%M}\", end: \"{end:%H:%M}\"}}\n"


async def test_a_conversion_during_a_deferral_leaves_nothing_pending(ts_env, settings,
                                                                    tmp_path):
    now = (await ts_env.get_current_time()).astimezone(UTC)
    campaign = write_campaign(tmp_path / "q", CASCADE_YAML + _quiet_now(now))
    async with cascade_of(ts_env, settings, campaign,
                          [{"id": "q1", "email": "q@example.com", "timezone": "UTC"}]) as c:
        await wait_state(c.handle("q1"), Stage.DEFERRED, "0")
        env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
        until = f"{(now + timedelta(hours=2)):%Y-%m-%d %H:%M} UTC"
        # the night's outbox is empty, and says what is waiting
        assert f"1 message deferred until {until}" in run_cli("outbox", env=env, ok=True).stdout
        await convert(c.client, settings, "q1")
        await wait_state(c.handle("q1"), Stage.FOLLOW_UP_DUE)  # the review is still due
        assert deliveries(settings, c.row("q1").id)["0"] == ("skipped", "converted")
        with session_scope(settings.db_url) as s:
            run = run_show(c.run_id, session=s)
            [e] = customer_show("q1", session=s)["enrollments"]
            assert deferred_note(session=s) is None
        assert "deferred" not in run_cli("outbox", env=env, ok=True).stdout
        step = run["steps"][0]
        assert (step["waiting"], step["deferred"]) == (0, 0)
        assert "deferred" not in e["status_label"]
        assert e["status_label"].startswith("converted · after 1 (email review) due in")
        assert await c.finish("q1") == "converted"


async def test_a_stopped_cascade_leaves_no_deferral_behind(ts_env, settings, tmp_path):
    from omnicascade.cascade import lifecycle
    from omnicascade.vocabulary import EnrollmentStatus
    now = (await ts_env.get_current_time()).astimezone(UTC)
    campaign = write_campaign(tmp_path / "q", STEPS_ONLY + _quiet_now(now))
    async with cascade_of(ts_env, settings, campaign,
                          [{"id": "q2", "email": "q@example.com", "timezone": "UTC"}]) as c:
        await wait_state(c.handle("q2"), Stage.DEFERRED, "0")
        with session_scope(settings.db_url) as s:
            lifecycle.end_live(session=s, status=EnrollmentStatus.EXITED, reason="cart_emptied",
                               enrollment_ids=[c.row("q2").id])
        assert deliveries(settings, c.row("q2").id)["0"] == ("skipped", "stopped")
        await c.finish("q2")  # its signal was lost: the stored skip still ends it
    assert list(deliveries(settings, c.row("q2").id)) == ["0"]
