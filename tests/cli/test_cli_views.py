"""The views through the installed `omnicascade` command, on a run written by hand (no
Temporal): steps numbered from 1 and reasons in words everywhere (`outbox`, `customers
show`, `runs show`, with a variant column when there are variants), status and time in
words in the customer's zone, a rehearsal's campaign clock, and unmatched conversions."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta

import pytest

from omnicascade.db.models import Delivery, Run
from omnicascade.db.session import session_scope
from tests.helpers.cli import home_env, run_cli
from tests.helpers.views import BERLIN, Seeded, next_nine_berlin, seed

pytestmark = pytest.mark.db
RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")  # what people should never have to read
# `09:00`, `tomorrow 09:00` or a weekday: the day depends on when the test runs
NINE = re.compile(r"deferred until (tomorrow |\w{3} \d+ \w{3} )?09:00 Europe/Berlin "
                  r"\(quiet hours\)")


@pytest.fixture
def seeded(settings, tmp_path) -> Seeded:  # noqa: ANN001
    return seed(settings, tmp_path / "campaign")


@pytest.fixture
def cli(settings, tmp_path):  # noqa: ANN001
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)

    def run(*args: str) -> str:
        return run_cli(*args, env=env, ok=True).stdout
    return run


def test_outbox_numbers_steps_from_one(seeded, cli):
    rows = json.loads(cli("outbox", "--json"))
    assert {(m["customer_id"], m["step"], m["label"]) for m in rows} == {
        ("ada", "0", "step 1"), ("dee", "ac0", "after 1")}
    text = cli("outbox")
    assert "step 1" in text and "after 1" in text and "ac0" not in text
    assert "1 h ago" in text and not RAW_ISO.search(text)


def test_customers_show_says_what_a_converted_customer_waits_for(seeded, cli):
    data = json.loads(cli("customers", "show", "ada", "--json"))
    [e] = data["enrollments"]
    assert e["status"] == "active"  # the database's word, kept for machines
    assert e["status_label"] == "converted · after 1 (email review) due in 2 d 23 h"
    assert e["rehearsal"] is None and data["customer"]["zone"] == "Europe/Berlin"
    [m] = data["messages"]
    assert (m["step"], m["label"], m["status_label"]) == ("0", "step 1", "sent")
    assert m["at"].endswith("Z")  # JSON keeps ISO instants
    text = cli("customers", "show", "ada")
    assert "converted · after 1 (email review) due in 2 d 23 h" in text
    assert "times in Europe/Berlin" in text and "email step 1" in text
    assert "status=active" not in text and "step 0" not in text
    assert not RAW_ISO.search(text)
    sent = (seeded.now - timedelta(hours=1, microseconds=-500_000)).replace(microsecond=0)
    berlin = sent.replace(tzinfo=UTC).astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    assert re.search(rf"{berlin} · 1 h ago\s+│\s+email step 1", text), text  # Berlin, not UTC


def test_customers_show_says_when_a_deferred_send_goes_out(seeded, cli):
    data = json.loads(cli("customers", "show", "bob", "--json"))
    assert data["customer"]["zone"] == "Europe/Berlin"  # from his phone number
    [m] = data["messages"]
    assert NINE.fullmatch(m["status_label"]), m
    assert m["deferred_until"].endswith("Z")
    assert data["enrollments"][0]["status_label"] == f"active · step 1 {m['status_label']}"
    text = cli("customers", "show", "bob")
    assert NINE.search(text) and not RAW_ISO.search(text)


def test_runs_show_has_a_variant_column_and_labels(seeded, cli):
    data = json.loads(cli("runs", "show", seeded.run_id, "--json"))
    steps = {(s["variant"], s["label"], s["channel"]): s for s in data["steps"]}
    assert set(steps) == {("control", "step 1", "email"), ("sms_first", "step 1", "sms")}
    assert steps[("control", "step 1", "email")]["index"] == 0  # machine key kept
    assert steps[("control", "step 1", "email")]["sent"] == 3
    assert steps[("sms_first", "step 1", "sms")]["deferred"] == 1
    [review] = data["after_conversion"]
    assert (review["variant"], review["label"], review["sent"]) == ("control", "after 1", 1)
    assert (data["unmatched"], data["rehearsal"]) == (1, None)
    text = cli("runs", "show", seeded.run_id)
    assert re.search(r"control\s+│\s+step 1\s+│\s+email", text), text
    assert re.search(r"sms_first\s+│\s+step 1\s+│\s+sms", text), text
    assert re.search(r"control\s+│\s+after 1\s+│\s+email", text), text
    assert "unmatched" in text and "rehearsal" not in text


def test_reasons_read_in_words(seeded, cli, settings):
    with session_scope(settings.db_url) as s:
        s.get(Delivery, "enr_bob:0").status = "skipped"
        s.get(Delivery, "enr_bob:0").reason = "no_address"
        s.get(Run, seeded.run_id).status = "stopped"
    text = cli("runs", "show", seeded.run_id)
    assert "no address 1" in text and "no_address" not in text
    assert "skipped (no address)" in cli("customers", "show", "bob")


def test_runs_list_counts_unmatched_conversions(seeded, cli):
    [row] = json.loads(cli("runs", "list", "--json"))
    assert (row["unmatched"], row["rehearsal"]) == (1, None)
    text = cli("runs", "list")
    assert "unmatched" in text and "2 d ago" in text and not RAW_ISO.search(text)


def test_a_rehearsal_reads_in_campaign_time(seeded, cli, settings):
    """×3600, launched 2 wall-minutes ago: bob's SMS, held by quiet hours until 09:00 on
    the campaign clock, is stored as the wall-clock instant the workflow wakes at."""
    with session_scope(settings.db_url) as s:
        run = s.get(Run, seeded.run_id)
        run.time_scale = 3600.0
        run.created_at = seeded.now - timedelta(minutes=2)
        campaign_now = run.created_at + (seeded.now - run.created_at) * 3600
        nine = next_nine_berlin(campaign_now)
        s.get(Delivery, "enr_bob:0").deferred_until = \
            run.created_at + (nine - run.created_at) / 3600
    rehearsal = {"scale": 3600, "label": "rehearsal ×3600",
                 "started_at": (seeded.now - timedelta(minutes=2)).isoformat() + "Z"}
    [row] = json.loads(cli("runs", "list", "--json"))
    assert row["rehearsal"] == rehearsal
    assert "listening · rehearsal ×3600" in cli("runs", "list")
    assert json.loads(cli("runs", "show", seeded.run_id, "--json"))["rehearsal"] == rehearsal
    text = cli("runs", "show", seeded.run_id)
    assert "rehearsal ×3600" in text and "campaign time" in text
    data = json.loads(cli("customers", "show", "bob", "--json"))
    assert data["enrollments"][0]["rehearsal"] == rehearsal
    # campaign time runs an hour a second: the day may have turned since `campaign_now`
    assert NINE.fullmatch(data["messages"][0]["status_label"]), data["messages"]
    text = cli("customers", "show", "bob")
    assert NINE.search(text) and "rehearsal ×3600" in text
    assert "campaign time ×3600" in text  # real time first, campaign time labelled


@pytest.mark.parametrize("as_json", [False, True])
def test_convert_for_an_unknown_customer_warns_on_stderr_and_exits_0(settings, tmp_path,
                                                                      as_json):
    """Issue 27 (4): stored all the same, but not in silence."""
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    r = run_cli("convert", "--customer", "s-nobody", "--type", "order_placed",
                *(["--json"] if as_json else []), env=env, ok=True)
    assert "no customer s-nobody: stored as an unmatched conversion" in r.stderr
    assert "s-nobody" in r.stdout
    if as_json:
        assert json.loads(r.stdout)["matched"] is False  # stdout keeps the JSON shape
