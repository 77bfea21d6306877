"""Conversions that tell the truth: one for a customer nobody knows is stored and answered
`"matched": false`; `conversion.window` bounds how long after a cascade ended a conversion
still counts for it (on the run's clock: a rehearsal's week passes N times faster)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Enrollment, utcnow
from omnicascade.db.session import session_scope
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers

pytestmark = pytest.mark.db

WINDOWED = """\
campaign: windowed
trigger: {{event: cart_abandoned}}
conversion: {{events: [order_placed]{window}}}
steps:
  - {{channel: email, template: t_email, wait: 24h}}
"""


def _record(settings: Settings, event_id: str, customer: str,
            occurred: datetime | None = None) -> dict[str, object]:
    with session_scope(settings.db_url) as s:
        return record_conversion(ConversionIn(event_id=event_id, type="order_placed",
                                              customer_id=customer, occurred_at=occurred),
                                 session=s).body()


def _finished_enrollment(settings: Settings, folder: Path, *, window: str = "",
                         time_scale: float = 1.0) -> tuple[str, datetime]:
    loaded = load_campaign(write_campaign(folder, WINDOWED.format(window=window)))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s, time_scale=time_scale)
        row = enroll_customers(run, ["c1"], session=s)[0]
        ended = utcnow() - timedelta(days=30)
        row.status, row.enrolled_at, row.finished_at = "completed", ended - timedelta(days=1), ended
        return row.id, ended


def _converted(settings: Settings, enrollment_id: str) -> bool:
    with session_scope(settings.db_url) as s:
        row = s.get(Enrollment, enrollment_id)
        assert row is not None
        return row.converted_at is not None


def test_a_conversion_for_an_unknown_customer_is_stored_and_answered_unmatched(settings):
    add_customers(settings, {"id": "c1", **FULL})
    assert _record(settings, "o-nobody", "nobody") == {
        "event_id": "o-nobody", "customer_id": "nobody", "stopped": 0, "matched": False}
    assert _record(settings, "o-nobody", "nobody")["matched"] is False  # the repeat says so too
    assert _record(settings, "o-c1", "c1")["matched"] is True  # known, merely not enrolled
    with session_scope(settings.db_url) as s:
        rows = {r.event_id: r.matched for r in s.scalars(select(ConversionEvent))}
    assert rows == {"o-nobody": False, "o-c1": True}  # nothing is lost


def test_the_default_window_is_a_week_after_the_cascade_ended(settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    enrollment_id, ended = _finished_enrollment(settings, tmp_path / "a")
    _record(settings, "late", "c1", ended + timedelta(days=8))
    assert not _converted(settings, enrollment_id)  # too late: not this run's conversion
    _record(settings, "in-time", "c1", ended + timedelta(days=6, hours=23))
    assert _converted(settings, enrollment_id)


def test_conversion_window_is_configurable(settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    enrollment_id, ended = _finished_enrollment(settings, tmp_path / "a", window=", window: 2h")
    _record(settings, "late", "c1", ended + timedelta(hours=3))
    assert not _converted(settings, enrollment_id)
    _record(settings, "in-time", "c1", ended + timedelta(hours=1))
    assert _converted(settings, enrollment_id)


def test_a_rehearsals_window_runs_on_its_clock(settings, tmp_path):
    add_customers(settings, {"id": "c1", **FULL})
    enrollment_id, ended = _finished_enrollment(settings, tmp_path / "a", time_scale=3600)
    with session_scope(settings.db_url) as s:
        row = s.get(Enrollment, enrollment_id)
        assert row is not None and row.conversion_window_s == pytest.approx(7 * 24)  # 7 d / 3600
    _record(settings, "late", "c1", ended + timedelta(minutes=3))  # 3 min ×3600 = 7.5 d
    assert not _converted(settings, enrollment_id)
    _record(settings, "in-time", "c1", ended + timedelta(minutes=2))  # 5 campaign days
    assert _converted(settings, enrollment_id)
