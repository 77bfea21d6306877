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


def test_preview_shows_the_whatsapp_template_and_its_variables(tmp_path):
    """A WhatsApp step with an approved template: preview names the Content SID and the
    variables as this customer gets them; without consent the step shows as skipped."""
    from tests.helpers.whatsapp import CONTENT_SID, write_wa_campaign
    env = home_env(tmp_path / "home")
    people = tmp_path / "people.csv"
    people.write_text("id,phone,first_name,consent_whatsapp\nw1,+4915112345678,Ana,yes\n"
                      "w2,+4915112345679,Ben,\n")
    assert run_cli("customers", "import", str(people), env=env).returncode == 0
    campaign = write_wa_campaign(tmp_path / "wa")
    r = run_cli("campaign", "preview", str(campaign), "--customer", "w1", "--json", env=env)
    assert r.returncode == 0, r.stderr
    [wa, sms, free] = json.loads(r.stdout)
    assert wa["channel"] == "whatsapp" and not wa.get("skipped")
    assert wa["whatsapp_template"]["content_sid"] == CONTENT_SID
    variables = wa["whatsapp_template"]["content_variables"]
    assert variables["1"] == "Ana" and variables["2"]  # a sample promo code
    assert "whatsapp_template" not in free  # free-form: the body, inside the window only
    text = run_cli("campaign", "preview", str(campaign), "--customer", "w1", env=env).stdout
    assert f"WhatsApp template {CONTENT_SID}: {{{{1}}}} = Ana" in text
    r = run_cli("campaign", "preview", str(campaign), "--customer", "w2", "--json", env=env)
    assert json.loads(r.stdout)[0]["skipped"] == "no_consent"  # WhatsApp is opt-in


def test_audience_preview_names_the_holdout_and_the_currency(tmp_path):
    """14 customers with `holdout: 10%` can leave the holdout empty (a hash decides): the
    summary says so instead of leaving the row out; every cost names its currency."""
    from omnicascade.campaign.load import load_campaign
    from omnicascade.campaign.variants import assign_variant
    env = home_env(tmp_path / "home")
    campaign = write_campaign(tmp_path / "c", EXPERIMENT)
    spec = load_campaign(campaign).spec
    ids = [f"h{i}" for i in range(100) if assign_variant(spec, f"h{i}") != "holdout"][:14]
    people = tmp_path / "people.csv"
    people.write_text("id,email,phone\n" + "".join(
        f"{i},{i}@example.com,+49151123{n:05d}\n" for n, i in enumerate(ids)))
    r = run_cli("campaign", "preview", str(campaign), "--audience", str(people), "--json",
                env=env)
    summary = json.loads(r.stdout)
    assert summary["variants"]["holdout"] == 0 and summary["currency"] == "USD"
    assert summary["holdout"] == {"percent": 10.0, "customers": 0,
                                  "note": "holdout of 0 customers (10% of 14)"}
    text = run_cli("campaign", "preview", str(campaign), "--audience", str(people),
                   env=env).stdout
    assert "holdout of 0 customers (10% of 14): too few for a lift" in text
    assert f"per 1,000 customers (nobody converts): {summary['cost_per_1000']:.2f} USD" in text
    assert run_cli("customers", "import", str(people), env=env).returncode == 0
    r = run_cli("campaign", "preview", str(campaign), "--customer", ids[0], "--json", env=env)
    sms = next(m for m in json.loads(r.stdout) if m["channel"] == "sms")
    assert (sms["cost"], sms["currency"]) == (0.05, "USD")
    text = run_cli("campaign", "preview", str(campaign), "--customer", ids[0], env=env).stdout
    assert "1 SMS segment(s) · 0.05 USD" in text
