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
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Enrollment
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
        ended = now_utc() - timedelta(days=30)
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


KEYED = """\
campaign: counted
trigger: {event: cart_abandoned, key: cart_id}
conversion: {events: [order_placed], match: key, lookback: 1h, window: 2d}
promo: {pattern: "CT-{random:6}"}
steps:
  - {channel: email, template: t_email, wait: 24h}
"""
H = timedelta(hours=1)
# (case, ended, type, occurred − entry, data, own promo code?, counts?)
CASES = [
    ("before entry, beyond the lookback", False, "order_placed", -2 * H, None, False, False),
    ("before entry, within the lookback", False, "order_placed", -H / 2, None, False, True),
    ("inside the cascade", False, "order_placed", 5 * H, None, False, True),
    ("another event type", False, "page_viewed", 5 * H, None, False, False),
    ("after the end, within the window", True, "order_placed", 10 * H + 47 * H, None, False,
     True),
    ("after the end, past the window", True, "order_placed", 10 * H + 49 * H, None, False,
     False),
    ("keyed: its own key", False, "order_placed", H, {"cart_id": "A"}, False, True),
    ("keyed: another key", False, "order_placed", H, {"cart_id": "B"}, False, False),
    ("keyed: another key, its own promo code", False, "order_placed", H, {"cart_id": "B"},
     True, True),
    ("keyed: no key value ends them all", False, "order_placed", H, {"total": 3}, False, True),
    ("keyed: its own key, after the window", True, "order_placed", 60 * H, {"cart_id": "A"},
     False, False),
]


@pytest.mark.parametrize(("case", "ended", "kind", "offset", "data", "own_code", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_one_rule_decides_whether_a_conversion_counts_in_sql_and_in_python(
        settings, tmp_path, case, ended, kind, offset, data, own_code, expected):
    """"Does this conversion count for this cascade": the SQL path (the send-time guard's
    one query, `converted_since`) and the Python path (recording a conversion,
    `Counts.counts`) answer every case alike — and as the campaign says."""
    from omnicascade.cascade.entries import Counts, converted_since, recently_converted

    add_customers(settings, {"id": "c1", **FULL})
    loaded = load_campaign(write_campaign(tmp_path / "c", KEYED))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s)
        row = enroll_customers(run, ["c1"], session=s, key="A")[0]
        entry = now_utc() - timedelta(days=10)
        row.enrolled_at = entry
        if ended:  # ended 10 h after its entry; the window (2 d) runs from then
            row.status, row.finished_at = "completed", entry + 10 * H
        promo = row.promo_code if own_code else None
        s.add(ConversionEvent(event_id="o1", type=kind, customer_id="c1", data=data,
                              promo_code=promo, occurred_at=entry + offset,
                              recorded_at=now_utc()))
        s.flush()
        in_python = Counts.of(row).counts(kind, entry + offset, data, promo)
        in_sql = converted_since(row, session=s)
        # the entry check asks the same rule of a cascade that would start at `entry`
        entering = recently_converted(loaded.spec, [("c1", "A")], entry, session=s)
    assert (in_python, in_sql) == (expected, expected), case
    if not ended and not own_code and offset < timedelta(0):
        assert entering == ({("c1", "A")} if expected else set()), case
