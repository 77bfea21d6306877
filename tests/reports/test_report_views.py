"""One vocabulary in every view of the report: steps named from 1 (`step 1`, `after 1`),
skip and exit reasons by their human label (JSON keeps the machine keys), and a variant
column in every per-step table when several variants get messages."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from rich.console import Console

from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report, export
from omnicascade.reports.html import render_html
from omnicascade.reports.terminal import report_view
from tests.helpers.reports import T0, conversion, launch, member, send


@pytest.fixture
def run_id(settings, tmp_path) -> str:
    rid = launch(settings, tmp_path / "campaign")  # control: email → sms → push;
    with session_scope(settings.db_url) as s:      # sms_first: sms → email → push
        a = member(s, rid, "a", "control")
        send(s, a, 0, "email", T0)
        send(s, a, 1, "sms", T0 + timedelta(hours=24), "skipped", "no_address")
        b = member(s, rid, "b", "control")
        send(s, b, 0, "email", T0)
        send(s, b, 1, "sms", T0 + timedelta(hours=24), "skipped", "no_consent")
        c = member(s, rid, "c", "sms_first")
        send(s, c, 0, "sms", T0)
        conversion(s, c, T0 + timedelta(hours=2), 10.0)
        send(s, c, 0, "email", T0 + timedelta(days=1), phase="follow_up")
        d = member(s, rid, "d", "sms_first", status="stopped")
        d.exit_reason = "stopped"
        send(s, d, 0, "sms", T0, "skipped", "no_address")
        member(s, rid, "h", "holdout")
    return rid


@pytest.fixture
def report(settings, run_id) -> dict:
    with session_scope(settings.db_url) as s:
        return build_report(run_id, session=s, settings=settings)


def text_of(report: dict) -> str:
    console = Console(width=240, record=True, file=io.StringIO())
    for item in report_view(report):
        console.print(item)
    return console.export_text()


def test_json_rows_carry_label_and_variant_and_keep_machine_keys(report):
    assert [(r["variant"], r["index"], r["label"], r["channel"], r["skipped_by_reason"])
            for r in report["funnel"]["all"]] == [
        ("control", 0, "step 1", "email", {}),
        ("control", 1, "step 2", "sms", {"no_address": 1, "no_consent": 1}),
        ("control", 2, "step 3", "push", {}),
        ("sms_first", 0, "step 1", "sms", {"no_address": 1}),
        ("sms_first", 1, "step 2", "email", {}), ("sms_first", 2, "step 3", "push", {}),
        ("sms_first", 0, "after 1", "email", {})]
    assert [(r["variant"], r["label"]) for r in report["attribution"]["by_step"]] == \
        [("sms_first", "step 1")]
    assert report["stopped_by_reason"] == {"stopped": 1}
    assert "cascades ended before they ran out: 1 stopped (run stopped 1)" in report["notes"]


def test_terminal_tables_have_a_variant_column_and_labels(report):
    text = text_of(report)
    funnel = text.split("Funnel", 1)[1]
    header = next(line for line in funnel.splitlines() if "channel" in line)
    assert re.search(r"variant\s+┃\s+step\s+┃\s+channel", header)
    assert re.search(r"control\s+│\s+step 2\s+│\s+sms", funnel)
    assert re.search(r"sms_first\s+│\s+after 1\s+│\s+email", funnel)
    assert "no address 1, no consent 1" in funnel
    assert "no_address" not in text and "no_consent" not in text
    touch = text.split("last touch", 1)[1]
    assert re.search(r"sms_first\s+│\s+step 1\s+│\s+sms", touch)


def test_html_and_csv_speak_the_same_words(report, settings, run_id, tmp_path):
    page = render_html(report)
    assert "no address 1, no consent 1" in page and "no_address" not in page
    for section in ("funnel", "attribution", "economics"):
        body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
        assert '<th class=l>variant</th><th class=l>step</th>' in body, section
    assert "<td class=l>sms_first</td><td class=l>step 1</td>" in page
    with session_scope(settings.db_url) as s:
        paths = export(run_id, tmp_path / "csv", session=s, settings=settings)
    rows = list(csv.DictReader(paths[1].open()))
    assert [(r["variant"], r["step"], r["skipped_by_reason"]) for r in rows][:2] == [
        ("control", "step 1", ""), ("control", "step 2", "no address 1; no consent 1")]
    people = {r["customer_id"]: r for r in csv.DictReader(paths[0].open())}
    assert people["a"]["step_2"] == "sms: skipped (no address)"
    assert people["c"]["credited_step"] == "step 1"


def test_one_variant_needs_no_variant_column(settings, tmp_path):
    rid = launch(settings, tmp_path / "campaign")
    with session_scope(settings.db_url) as s:
        send(s, member(s, rid, "a", "control"), 0, "email", T0)
    with session_scope(settings.db_url) as s:
        r = build_report(rid, session=s, settings=settings)
    assert [(x["variant"], x["label"]) for x in r["steps"]] == [
        ("control", "step 1"), ("control", "step 2"), ("control", "step 3")]
    header = next(line for line in text_of(r).split("Funnel", 1)[1].splitlines()
                  if "channel" in line)
    assert "variant" not in header and "variant</th><th class=l>step" not in render_html(r)


def test_an_empty_holdout_says_why_there_is_no_lift(settings, tmp_path):
    """`holdout: 10%` of 14 customers can take nobody (a hash decides): the report keeps
    `lift: null` and says why, in JSON, the terminal and the HTML page."""
    rid = launch(settings, tmp_path / "campaign")  # holdout: 10%
    with session_scope(settings.db_url) as s:
        for i in range(14):
            e = member(s, rid, f"m{i:02d}", "control" if i % 2 else "sms_first")
            send(s, e, 0, "email", T0)
    with session_scope(settings.db_url) as s:
        r = build_report(rid, session=s, settings=settings)
    assert r["lift"] is None
    assert r["lift_note"] == "holdout of 0 customers (10% of 14)"
    assert "No lift over the holdout: holdout of 0 customers (10% of 14)" in text_of(r)
    assert "No lift over the holdout: holdout of 0 customers (10% of 14)" in render_html(r)


def test_a_filled_holdout_needs_no_note(report):
    assert report["lift"] is not None and report["lift_note"] is None
