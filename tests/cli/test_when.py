"""How times and statuses read for people (reports/when.py, reports/labels.py): spans,
relative times, instants in a named zone, a rehearsal's campaign clock, and status in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from omnicascade.clock import LIVE, RunClock
from omnicascade.reports.labels import View, delivery_label, enrollment_label
from omnicascade.reports.when import (
    clock_from,
    local,
    moment,
    parse_iso,
    relative,
    span,
    zone_name,
    zone_of,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, 0, 41, 13, 359826)  # naive UTC, as stored: 01:41 in Berlin


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(days=2, hours=23, minutes=59, seconds=59), "2 d 23 h"),
    (timedelta(days=2, minutes=5), "2 d"),          # never skips a unit
    (timedelta(hours=3, minutes=5, seconds=9), "3 h 5 min"),
    (timedelta(minutes=4), "4 min"),
    (timedelta(seconds=45.9), "45 s"),
    (timedelta(milliseconds=300), "0 s"),
    (timedelta(hours=-5), "5 h"),
])
def test_span(delta: timedelta, text: str) -> None:
    assert span(delta) == text


def test_relative_times_for_scanning() -> None:
    assert relative(NOW - timedelta(hours=3, minutes=20), NOW) == "3 h ago"
    assert relative(NOW + timedelta(days=2, hours=5), NOW) == "in 2 d"
    assert relative(NOW, NOW + timedelta(milliseconds=10)) == "just now"
    aware = NOW.replace(tzinfo=UTC).astimezone(BERLIN)  # naive and aware mix
    assert relative(aware - timedelta(minutes=2), NOW) == "2 min ago"


def test_instants_in_a_named_zone() -> None:
    nine = datetime(2026, 12, 2, 8, 0)  # 09:00 in Berlin
    assert moment(nine, BERLIN, NOW) == "09:00 Europe/Berlin"
    assert moment(nine + timedelta(days=1), BERLIN, NOW) == "tomorrow 09:00 Europe/Berlin"
    assert moment(nine - timedelta(days=1), BERLIN, NOW) == "yesterday 09:00 Europe/Berlin"
    assert moment(nine + timedelta(days=4), BERLIN, NOW) == "Sun 6 Dec 09:00 Europe/Berlin"
    assert moment(nine + timedelta(days=35), BERLIN, NOW) == "2027-01-06 09:00 Europe/Berlin"
    assert local(NOW, BERLIN, seconds=True) == "2026-12-02 01:41:13"  # no microseconds
    summer = datetime(2026, 7, 1, 7, 0)
    assert moment(summer, BERLIN, summer) == "09:00 Europe/Berlin"  # DST: UTC+2
    assert moment(NOW, zone_of(None), NOW) == "00:41 UTC"
    assert zone_name(zone_of("Not/AZone")) == "UTC"


def test_a_rehearsal_clock_round_trips_through_json() -> None:
    started = datetime(2026, 12, 1, 12, 0)
    clock = clock_from({"scale": 3600, "label": "rehearsal ×3600",
                        "started_at": "2026-12-01T12:00:00Z"})
    assert clock == RunClock(started, 3600.0) and clock_from(None) is None
    assert parse_iso("2026-12-01T12:00:00.5Z") == datetime(2026, 12, 1, 12, 0, 0, 500000,
                                                           tzinfo=UTC)


def _view(clock: RunClock = LIVE) -> View:
    return View(clock, BERLIN, NOW)


def test_delivery_labels() -> None:
    nine = datetime(2026, 12, 2, 8, 0)
    assert delivery_label("deferred", "quiet_hours", nine, _view()) == \
        "deferred until 09:00 Europe/Berlin (quiet hours)"
    assert delivery_label("deferred", "paused", nine, _view()) == "held while paused"
    assert delivery_label("skipped", "no_address", None, _view()) == "skipped (no address)"
    assert delivery_label("skipped", "no_consent", None, _view()) == "skipped (no consent)"
    assert delivery_label("failed", "bounced", None, _view()) == "failed (bounced)"
    assert delivery_label("sent", None, None, _view()) == "sent"


def test_a_rehearsal_deferral_reads_on_the_campaign_clock() -> None:
    """Stored on the wall clock: a rehearsal ×3600 started an hour (wall) ago is 150 d into
    its campaign; the deferral 2 wall-seconds from now is 2 campaign hours from then."""
    clock = RunClock(NOW - timedelta(hours=1), 3600.0)
    until = NOW + timedelta(seconds=2)
    campaign_now = clock.campaign(NOW)
    expected = moment(campaign_now + timedelta(hours=2), BERLIN, campaign_now)
    assert delivery_label("deferred", "quiet_hours", until, _view(clock)) == \
        f"deferred until {expected} (quiet hours)"
    assert expected != moment(until, BERLIN, NOW)


SPEC = {"steps": [{"channel": "email", "template": "t_email", "wait": "1d"},
                  {"channel": "sms", "template": "t_sms", "wait": "1d"}],
        "after_conversion": [{"channel": "email", "template": "review", "delay": "3d"}],
        "experiment": {"variants": {"sms_first": {"steps": [
            {"channel": "sms", "template": "t_sms", "wait": "12h"}]}}}}


def _enrollment(status: str, converted: bool = False, variant: str = "control",
                reason: str | None = None) -> dict:
    return {"status": status, "exit_reason": reason, "variant": variant,
            "converted_at": NOW - timedelta(minutes=30) if converted else None}


def _send(index: int, status: str = "sent", phase: str = "cascade", at: datetime = NOW,
          reason: str | None = None, until: datetime | None = None) -> dict:
    return {"phase": phase, "index": index, "channel": "email", "template": "t",
            "status": status, "reason": reason, "at": at, "deferred_until": until}


def test_a_converted_customer_waiting_for_the_review_request() -> None:
    label = enrollment_label(_enrollment("active", converted=True),
                             [_send(0, at=NOW - timedelta(hours=1))], SPEC,
                             NOW - timedelta(minutes=30), _view())
    assert label == "converted · after 1 (email review) due in 2 d 23 h"
    # a rehearsal ×3600: 30 wall-seconds after the conversion are 30 campaign hours: 42 h left
    clock = RunClock(NOW - timedelta(hours=1), 3600.0)
    label = enrollment_label(_enrollment("active", converted=True), [], SPEC,
                             NOW - timedelta(seconds=30), _view(clock))
    assert label == "converted · after 1 (email review) due in 1 d 18 h"


@pytest.mark.parametrize(("row", "sends", "text"), [
    (_enrollment("active"), [_send(0, at=NOW - timedelta(hours=2))],
     "active · step 1 (email) sent, waiting 22 h more for a conversion"),
    (_enrollment("active", variant="sms_first"), [_send(0, at=NOW - timedelta(hours=2))],
     "active · step 1 (email) sent, waiting 10 h more for a conversion"),
    (_enrollment("active"), [_send(1, "skipped", reason="no_address")],
     "active · step 2 (email) skipped (no address)"),
    (_enrollment("active"), [_send(0, "deferred", reason="quiet_hours",
                                   until=datetime(2026, 12, 2, 8, 0))],
     "active · step 1 deferred until 09:00 Europe/Berlin (quiet hours)"),
    (_enrollment("active", converted=True),
     [_send(0), _send(0, "deferred", "follow_up", reason="quiet_hours",
                      until=datetime(2026, 12, 2, 8, 0))],
     "converted · after 1 deferred until 09:00 Europe/Berlin (quiet hours)"),
    (_enrollment("active", converted=True), [_send(0), _send(0, phase="follow_up")],
     "converted · finishing"),
    (_enrollment("pending"), [], "starting"),
    (_enrollment("stopped", reason="stopped"), [], "stopped · run stopped"),
    (_enrollment("stopped", reason="replaced"), [], "stopped · replaced by a newer version"),
    (_enrollment("exited", reason="cart_emptied"), [], "exited · cart_emptied"),
    (_enrollment("excluded", reason="converted"), [], "excluded · already converted"),
    (_enrollment("converted", converted=True), [_send(0)], "converted"),
    (_enrollment("completed"), [_send(0)], "completed"),
])
def test_status_in_words(row: dict, sends: list, text: str) -> None:
    assert enrollment_label(row, sends, SPEC, None, _view()) == text


def test_preview_reads_steps_from_one_and_times_without_microseconds(monkeypatch) -> None:
    from rich.console import Console

    from omnicascade.cli import display
    console = Console(record=True, width=120)
    monkeypatch.setattr(display, "console", console)
    display.preview_messages([
        {"variant": "control", "assigned": True, "phase": "cascade", "step": 1,
         "channel": "email", "to": "a@example.com", "subject": "Hi", "body": "…",
         "at": "2026-12-02T09:00:00+01:00", "zone": "Europe/Berlin",
         "deferred_from": "2026-12-02T01:41:13.359826+01:00"},
        {"variant": "control", "assigned": True, "phase": "cascade", "step": 2,
         "channel": "sms", "to": None, "body": "…", "skipped": "no_address", "at": ""},
        {"variant": "all", "assigned": True, "phase": "after_conversion", "step": 1,
         "channel": "email", "to": "a@example.com", "subject": "Review", "body": "…",
         "at": "3d after a conversion"}])
    text = console.export_text()
    assert "variant) · step 1 · email" in text and "variant) · step 2 · sms" in text
    assert "all · after 1 · email" in text and "3d after a conversion" in text
    assert "2026-12-02 09:00 Europe/Berlin  (quiet hours: deferred from 2026-12-02 01:41 " \
           "Europe/Berlin)" in text
    assert "skipped: no address" in text and ".359826" not in text
