"""A rehearsal's report reads in campaign time, and conversions for customers nobody
knows are counted as unmatched instead of vanishing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from rich.console import Console

from omnicascade.db.models import ConversionEvent, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report, export
from omnicascade.reports.html import render_html
from omnicascade.reports.terminal import report_view
from omnicascade.reports.unmatched import unmatched_conversions
from tests.helpers.reports import T0, conversion, launch, member, send

YAML = """\
campaign: rehearsal-test
trigger: {event: cart_abandoned}
conversion: {events: [order_placed, promo_redeemed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms}
"""


def text_of(report: dict) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    for item in report_view(report):
        console.print(item)
    return console.export_text()


def scaled_run(settings, folder, scale: float) -> str:
    """One customer: enrolled at the launch, emailed 10 wall seconds later, bought 60 wall
    seconds after entering."""
    rid = launch(settings, folder, YAML)
    with session_scope(settings.db_url) as s:
        s.get(Run, rid).time_scale = scale  # type: ignore[union-attr]
        e = member(s, rid, "r1", "default")
        send(s, e, 0, "email", T0 + timedelta(seconds=10))
        conversion(s, e, T0 + timedelta(seconds=60), 30.0, "USD")
    return rid


def test_a_rehearsal_reads_in_campaign_time(settings, tmp_path):
    rid = scaled_run(settings, tmp_path / "campaign", 3600)
    with session_scope(settings.db_url) as s:
        r = build_report(rid, session=s, settings=settings)
    assert r["rehearsal"] == {"scale": 3600, "label": "rehearsal ×3600",
                              "started_at": "2025-03-03T09:00:00Z"}
    # 60 wall seconds × 3600 = 60 campaign hours (2.5 days); the email went out 10 s =
    # 10 h after entry, so the purchase came 50 campaign hours after it
    assert r["variants"]["default"]["hours_to_convert"] == {"median": 60.0, "p90": 60.0}
    assert r["attribution"]["hours_to_convert"] == {
        "since_message": {"median": 50.0, "p90": 50.0},
        "since_enrollment": {"median": 60.0, "p90": 60.0}}
    assert r["conversion_curve"]["default"] == [[0.0, 0.0], [60.0, 1.0]]
    assert r["created_at"] == "2025-03-03T09:00:00Z"  # the launch: both clocks agree
    text = text_of(r)
    assert "rehearsal ×3600" in text and "campaign time" in text
    assert "2.5 d" in text and "0 min" not in text
    page = render_html(r)
    assert 'id="rehearsal"' in page and "rehearsal ×3600" in page
    assert "days since the customer entered (campaign time, rehearsal ×3600)" in page
    with session_scope(settings.db_url) as s:
        paths = export(rid, tmp_path / "csv", session=s, settings=settings)
    [row] = csv.DictReader(paths[0].open())
    # issue 27 (7): one clock per column — real time with its offset, campaign time apart
    assert (row["enrolled_at"], row["converted_at"], row["hours_to_convert"],
            row["hours_since_credited_message"]) == ("2025-03-03T09:00:00+00:00",
                                                     "2025-03-03T09:01:00+00:00", "60", "50")
    assert (row["campaign_time"], row["converted_campaign_time"]) == (
        "2025-03-03T09:00:00+00:00", "2025-03-05T21:00:00+00:00")


def test_a_live_run_reads_in_wall_time(settings, tmp_path):
    rid = scaled_run(settings, tmp_path / "campaign", 1.0)
    with session_scope(settings.db_url) as s:
        r = build_report(rid, session=s, settings=settings)
    assert r["rehearsal"] is None
    assert r["variants"]["default"]["hours_to_convert"]["median"] == round(1 / 60, 4)
    assert "rehearsal ×" not in text_of(r) and 'id="rehearsal"' not in render_html(r)
    with session_scope(settings.db_url) as s:
        paths = export(rid, tmp_path / "csv", session=s, settings=settings)
    [row] = csv.DictReader(paths[0].open())
    assert (row["enrolled_at"], row["converted_at"]) == ("2025-03-03T09:00:00+00:00",
                                                         "2025-03-03T09:01:00+00:00")
    assert "campaign_time" not in row  # a live run has one clock


def test_unmatched_conversions_of_the_runs_types_during_its_life(settings, tmp_path):
    rid = launch(settings, tmp_path / "campaign", YAML)
    with session_scope(settings.db_url) as s:
        for event_id, type_, at, matched in (
                ("u-1", "order_placed", T0 + timedelta(hours=1), False),     # counts
                ("u-2", "promo_redeemed", T0 + timedelta(days=2), False),    # counts
                ("u-3", "order_placed", T0 - timedelta(hours=1), False),     # before the run
                ("u-4", "newsletter_signup", T0 + timedelta(hours=1), False),  # not its type
                ("u-5", "order_placed", T0 + timedelta(hours=1), True)):     # a known customer
            s.add(ConversionEvent(event_id=event_id, type=type_, customer_id="nobody",
                                  occurred_at=at, recorded_at=at, matched=matched))
    with session_scope(settings.db_url) as s:
        run = s.get(Run, rid)
        assert run is not None
        assert unmatched_conversions(run, session=s) == 2
        assert unmatched_conversions(run, session=s, now=T0 + timedelta(days=1)) == 1
        r = build_report(rid, session=s, settings=settings)
    assert r["unmatched_conversions"] == 2
    assert any(n.startswith("2 conversion(s) of this campaign's types (order_placed, "
                            "promo_redeemed) came for customer ids nobody knows")
               for n in r["notes"])
    assert "unmatched conversions 2" in text_of(r)
    assert "Unmatched conversions" in render_html(r)
