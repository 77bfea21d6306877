"""`campaign preview`: renders every message per variant with the planned timeline, or
summarises an audience; needs no running server and writes nothing."""

from __future__ import annotations

import json

from tests.helpers.campaigns import CASCADE_YAML, EXPERIMENT_BLOCK, write_campaign
from tests.helpers.cli import home_env, run_cli

EXPERIMENT = CASCADE_YAML + """\
quiet_hours: {start: "00:00", end: "23:59"}
""" + EXPERIMENT_BLOCK


def test_preview_customer_and_audience(tmp_path):
    home = tmp_path / "home"
    env = home_env(home)
    campaign = write_campaign(tmp_path / "c", EXPERIMENT)
    people = tmp_path / "people.csv"
    rows = ["id,email,phone,telegram_chat_id,push_token,timezone,first_name"]
    rows += [f"p{i},p{i}@example.com,+49151123{i:05d},,tok{i},Europe/Berlin,P{i}"
             for i in range(200)]
    people.write_text("\n".join(rows) + "\n")
    assert run_cli("customers", "import", str(people), env=env).returncode == 0
    db_before = (home / "omnicascade.db").stat().st_mtime_ns

    r = run_cli("campaign", "preview", str(campaign), "--customer", "p1", "--json", env=env)
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    variants = {i["variant"] for i in items}
    assert variants == {"control", "sms_first", "all"}
    control = [i for i in items if i["variant"] == "control"]
    assert [i["channel"] for i in control] == ["email", "sms", "telegram", "push"]
    assert control[0]["subject"] == "Hi P1" and control[2]["skipped"]  # no telegram chat
    assert control[1]["segments"] == 1
    assert control[0]["deferred_from"] and control[0]["at"].endswith("+01:00")  # Berlin
    text = run_cli("campaign", "preview", str(campaign), "--customer", "p1", env=env).stdout
    assert "quiet hours: deferred from" in text and "SMS segment" in text

    r = run_cli("campaign", "preview", str(campaign), "--audience", str(people), "--json", env=env)
    summary = json.loads(r.stdout)
    assert summary["customers"] == 200 and summary["reachable"]["telegram"] == 0
    assert sum(summary["variants"].values()) == 200 and "holdout" in summary["variants"]
    # per non-holdout customer: 1 email + 1 sms (+ push for control); cost > 0
    assert summary["cost_per_1000"] > 0 and summary["avg_sms_segments"] == 1
    assert (home / "omnicascade.db").stat().st_mtime_ns == db_before  # nothing written

    bad = run_cli("campaign", "preview", str(campaign), env=env)
    assert bad.returncode == 1 and "exactly one of --customer" in bad.stderr
