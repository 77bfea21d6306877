"""`omnicascade campaign plan` in a marketer's words (issue 27, item 8): steps numbered
from 1 as every other view, a brand-new step `new` (not `changed`), and what changed said
in words (`wait 1d → 2d`), not raw JSON; the JSON keeps its machine keys."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from omnicascade.db.session import session_scope
from tests.helpers.campaigns import write_campaign
from tests.helpers.cli import home_env, run_cli
from tests.helpers.reports import launch, member, send

pytestmark = pytest.mark.db

V1 = """\
campaign: plan-me
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
quiet_hours: {start: "21:00", end: "08:00"}
steps:
  - {channel: email, template: t_email, wait: 1d}
  - {channel: sms,   template: t_sms}
"""
V2 = V1.replace("wait: 1d", "wait: 2d").replace('end: "08:00"', 'end: "09:00"') + \
    "  - {channel: push,  template: t_push}\n"


def test_plan_numbers_from_one_tells_new_from_changed_and_speaks_words(settings, tmp_path):
    run_id = launch(settings, tmp_path / "c", V1)
    with session_scope(settings.db_url) as s:  # one customer past the first step
        ada = member(s, run_id, "ada", "default", status="active")
        ada.campaign = "plan-me"
        send(s, ada, 0, "email", datetime(2026, 1, 1))
    path = write_campaign(tmp_path / "c", V2)
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    plan = json.loads(run_cli("campaign", "plan", str(path), "--json", env=env, ok=True).stdout)
    steps = [(r["number"], r["label"], r["status"], r.get("words")) for r in plan["steps"]]
    assert steps == [(1, "step 1", "changed", "wait 1d → 2d"), (2, "step 2", "same", None),
                     (3, "step 3", "new", "new: push · t_push")]
    assert [(r["index"], r["changed"]) for r in plan["steps"]] == [(0, True), (1, False),
                                                                  (2, True)]
    [quiet] = plan["settings"]
    assert quiet["key"] == "quiet_hours" and quiet["new"]["end"] == "09:00"  # machine keys
    assert quiet["words"] == "quiet_hours.end 08:00 → 09:00"
    assert list(plan["in_flight"]["by_step"]) == ["version 1: after step 1"]

    text = run_cli("campaign", "plan", str(path), env=env, ok=True).stdout
    assert "changed: wait 1d → 2d" in text and "quiet_hours.end 08:00 → 09:00" in text
    assert "step 3" in text and "new" in text and "after step 1: 1" in text
    assert "step 0" not in text and '{"' not in text


def test_a_step_inserted_first_is_new_and_the_rest_unchanged(settings, tmp_path):
    launch(settings, tmp_path / "c", V1)
    first = V1.replace("steps:\n", "steps:\n  - {channel: push,  template: t_push, wait: 1h}\n")
    path = write_campaign(tmp_path / "c", first)
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    plan = json.loads(run_cli("campaign", "plan", str(path), "--json", env=env, ok=True).stdout)
    assert [(r["label"], r["status"]) for r in plan["steps"]] == [
        ("step 1", "new"), ("step 2", "same"), ("step 3", "same")]


def test_removed_steps_are_removed(settings, tmp_path):
    launch(settings, tmp_path / "c", V1)
    path = write_campaign(tmp_path / "c", V1.replace(
        "  - {channel: sms,   template: t_sms}\n", ""))
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    plan = json.loads(run_cli("campaign", "plan", str(path), "--json", env=env, ok=True).stdout)
    assert [(r["label"], r["status"]) for r in plan["steps"]] == [
        ("step 1", "same"), ("step 2", "removed")]
    assert "removed" in run_cli("campaign", "plan", str(path), env=env, ok=True).stdout
