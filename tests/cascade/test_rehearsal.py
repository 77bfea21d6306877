"""Rehearsals (`campaign launch --time-scale N`) live on one simulated clock: quiet hours,
frequency caps, deferrals and follow-up delays all run N times faster, and a rehearsal
sends to the outbox whatever providers are configured, unless launched `--live`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import ActivityEnvironment

from omnicascade.activities.deliver import DeliverActivities
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.channels.base import Message, PermanentSendError, SendResult
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Delivery, Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, outbox

pytestmark = [pytest.mark.asyncio, pytest.mark.db]
BERLIN = ZoneInfo("Europe/Berlin")
EMAIL = StepPlan("0", 0, "email", "t_email", 86400)


def _quiet_now(hours_after: int) -> str:
    """A quiet-hours block that covers now in Berlin and ends `hours_after` hours later."""
    now = datetime.now(BERLIN)
    start, end = now - timedelta(hours=1), now + timedelta(hours=hours_after)
    return f'{{start: "{start:%H:%M}", end: "{end:%H:%M}"}}'


YAML = """\
campaign: rehearsed
conversion: {{events: [order_placed]}}
quiet_hours: {quiet}
frequency_cap: {{max: 1, per: 12h}}
steps:
  - {{channel: email, template: t_email, wait: 24h}}
  - {{channel: sms,   template: t_sms,   wait: 24h}}
after_conversion:
  - {{channel: email, template: review, delay: 3d}}
"""


class Refusing:
    """A configured provider a rehearsal must never call."""
    provider = "refusing"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, message: Message) -> SendResult:
        self.calls += 1
        raise PermanentSendError("a rehearsal called the real provider")


def _rehearsal(settings: Settings, folder: Path, *, scale: float, live: bool = False) -> str:
    yaml = YAML.format(quiet=_quiet_now(6)).replace("rehearsed", folder.name)  # own entries
    loaded = load_campaign(write_campaign(folder, yaml))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s, time_scale=scale, live=live)
        return enroll_customers(run, ["c1"], session=s)[0].id


async def _deliver(settings: Settings, enrollment_id: str, channel: object):
    acts = DeliverActivities(settings, {c: channel for c in CHANNELS})  # type: ignore[misc]
    return await ActivityEnvironment().run(acts.deliver_step, DeliverInput(enrollment_id, EMAIL))


async def test_quiet_hours_defer_a_rehearsal_on_its_own_clock(settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL, "timezone": "Europe/Berlin"})
    live_id = _rehearsal(settings, tmp_path / "live", scale=1)
    fast_id = _rehearsal(settings, tmp_path / "fast", scale=3600)
    before = now_utc()
    live, fast = (await _deliver(settings, live_id, Refusing()),
                  await _deliver(settings, fast_id, Refusing()))
    assert live.status == fast.status == "deferred"
    # live: about six hours of quiet left; the rehearsal: six campaign hours = six seconds
    live_wait = datetime.fromisoformat(live.defer_until).replace(tzinfo=None) - before
    fast_wait = datetime.fromisoformat(fast.defer_until).replace(tzinfo=None) - before
    assert timedelta(hours=4) < live_wait < timedelta(hours=7)
    assert timedelta(seconds=3) < fast_wait < timedelta(seconds=8)
    with session_scope(settings.db_url) as s:
        stored = s.get(Delivery, f"{fast_id}:0")
        assert stored is not None and stored.deferred_until is not None
        assert abs(stored.deferred_until - (before + fast_wait)) < timedelta(seconds=1)


async def test_a_rehearsal_sends_to_the_outbox_unless_live(settings, tmp_path, caplog):
    add_customers(settings, {"id": "c1", **FULL})  # no time zone: UTC
    yaml = "".join(line for line in YAML.format(quiet="").splitlines(keepends=True)
                   if not line.startswith(("quiet_hours", "frequency_cap")))
    folder = write_campaign(tmp_path / "c", yaml)
    refusing = Refusing()
    ids = {}
    for live in (False, True):
        with session_scope(settings.db_url) as s:
            run = create_run(load_campaign(folder), session=s, time_scale=3600, live=live)
            ids[live] = enroll_customers(run, ["c1"], session=s)[0].id
            if not live:  # one customer per entry: let the --live run enroll them again
                s.flush()
                s.get(Enrollment, ids[live]).active_entry = None  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, logger="omnicascade.deliver"):
        rehearsed = await _deliver(settings, ids[False], refusing)
        live = await _deliver(settings, ids[True], refusing)
    assert rehearsed.status == "sent" and rehearsed.provider_message_id.startswith("outbox-")
    assert [m.delivery_id for m in outbox(settings)] == [f"{ids[False]}:0"]
    assert refusing.calls == 1 and live.status == "failed"  # --live: the real provider
    # the operator sees the failure in one line, without the address
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and f"enrollment={ids[True]}" in lines[0]
    assert "step=step 1" in lines[0] and "channel=email" in lines[0]
    assert FULL["email"] not in lines[0]


async def test_a_rehearsal_scales_every_campaign_duration_exactly_once(settings, tmp_path):
    """×3600: a step's wait and a follow-up's delay (24 h, 3 d) last 24 s and 72 s on the
    wall; the cap's 12 h window counts the sends of the last 12 s; `conversion.window`
    (7 d) ends 168 s after the cascade; a quiet-hours deferral (6 campaign hours) lasts
    about 6 s (test above). Scaled twice they would be 1/3600 of that, not at all 3600×."""
    from types import SimpleNamespace

    from omnicascade.activities.caps import sends_in_window
    from omnicascade.cascade.cascade_input import run_spec
    from omnicascade.cascade.entries import Counts
    from omnicascade.clock import clock_of
    from omnicascade.workflows.cascade import CustomerCascade
    add_customers(settings, {"id": "c1", **FULL})
    enrollment_id = _rehearsal(settings, tmp_path / "fast", scale=3600)
    inp = SimpleNamespace(time_scale=3600.0)
    assert CustomerCascade._scaled(inp, 86_400) == timedelta(seconds=24)  # type: ignore[arg-type]
    assert CustomerCascade._scaled(inp, 3 * 86_400) == timedelta(seconds=72)  # type: ignore[arg-type]
    with session_scope(settings.db_url) as s:
        row = s.get(Enrollment, enrollment_id)
        assert row is not None
        run = s.get(Run, row.run_id)
        assert run is not None
        clock = clock_of(run)
        now = now_utc()
        for n, ago in enumerate((6, 18)):  # campaign hours 6 and 18 ago
            s.add(Delivery(id=f"d{n}", enrollment_id=row.id, run_id=run.id, customer_id="c1",
                           step_key=str(n), step_index=n, phase="cascade", channel="email",
                           template="t_email", attempts=1, status="sent",
                           created_at=now - timedelta(seconds=ago)))
        s.flush()
        assert sends_in_window(run_spec(run), "c1", "other", "email", session=s, lock=False,
                               clock=clock) == 1  # 6 s ago: in the 12 h (12 s) window
        assert row.conversion_window_s == pytest.approx(7 * 86_400 / 3600)  # stored on the wall
        row.status, row.finished_at = "completed", now
        assert Counts.of(row).until == now + timedelta(seconds=168)  # read as stored, once
