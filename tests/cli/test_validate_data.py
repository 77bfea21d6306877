"""Validation knows the data, and preview uses it (issue 15): `campaign validate --audience`
and imported customers catch a misspelled `customer.<attr>`; `trigger.example` feeds
validate and preview; the README walkthrough works word for word; `preview --audience`
counts the file's own contacts and only the campaign's channels. Through the installed
command, as a user runs it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import omnicascade
from tests.helpers.campaigns import CASCADE_YAML, TEMPLATES, four_steps, write_campaign
from tests.helpers.cli import home_env, run_cli

MISSPELLED = {**TEMPLATES, "t_sms.txt.j2": "Hi {{ customer.firstname }}, your cart"}
PEOPLE_CSV = ("id,email,phone,first_name,consent_sms\n"
              "p1,p1@example.com,+4915112345001,Ada,yes\n"
              "p2,p2@example.com,+4915112345002,Bo,no\n")


def _people(tmp_path: Path, name: str = "people.csv", text: str = PEOPLE_CSV) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _the_problem(stderr: str, file: Path) -> str:
    hits = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith(f"{file}:")]
    assert len(hits) == 1, stderr
    return hits[0]


def test_validate_with_an_audience_file_catches_a_misspelled_attribute(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", CASCADE_YAML, MISSPELLED)
    home = tmp_path / "home"
    env = home_env(home)
    sms = campaign.parent / "templates" / "t_sms.txt.j2"
    for people in (_people(tmp_path),
                   _people(tmp_path, "people.jsonl",
                           '{"id": "p1", "email": "p1@example.com", "first_name": "Ada"}\n')):
        r = run_cli("campaign", "validate", str(campaign), "--audience", str(people), env=env,
                    ok=False)
        line = _the_problem(r.stderr, sms)
        assert line.startswith(f"{sms}:1:16: unknown customer attribute 'firstname' "
                               f"(did you mean 'first_name'?)"), line
        assert people.name in line and "email" in line and "first_name" in line
    # the right spelling passes, and validate wrote nothing anywhere
    fixed = write_campaign(tmp_path / "ok", CASCADE_YAML,
                           {**TEMPLATES, "t_sms.txt.j2": "Hi {{ customer.first_name }}"})
    r = run_cli("campaign", "validate", str(fixed), "--audience", str(_people(tmp_path)),
                env=env, ok=True)
    assert "is valid" in r.stdout and "not checked" not in r.stdout
    assert not home.exists()


def test_validate_knows_the_imported_customers_and_writes_nothing(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", CASCADE_YAML, MISSPELLED)
    home = tmp_path / "home"
    env = home_env(home)
    # nothing imported, no audience: nobody can tell, so a note and no failure
    r = run_cli("campaign", "validate", str(campaign), env=env, ok=True)
    assert "customer attributes (customer.first_name, …) were not checked" in r.stdout
    assert not home.exists()
    r = run_cli("campaign", "validate", str(campaign), "--json", env=env, ok=True)
    assert any("not checked" in n for n in json.loads(r.stdout)["notes"])

    run_cli("customers", "import", str(_people(tmp_path)), env=env, ok=True)
    db = home / "omnicascade.db"
    before = db.stat().st_mtime_ns
    r = run_cli("campaign", "validate", str(campaign), env=env, ok=False)
    line = _the_problem(r.stderr, campaign.parent / "templates" / "t_sms.txt.j2")
    assert "'firstname' (did you mean 'first_name'?)" in line
    assert "2 imported customers" in line
    assert db.stat().st_mtime_ns == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_validate_refuses_event_data_in_a_campaign_without_trigger(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", four_steps("newsletter", "1d"),
                              {**TEMPLATES, "t_email.txt.j2": "Hi\n{{ cart.total }} left"})
    r = run_cli("campaign", "validate", str(campaign), env=home_env(tmp_path / "home"),
                ok=False)
    line = _the_problem(r.stderr, campaign.parent / "templates" / "t_email.txt.j2")
    assert line.startswith(f"{campaign.parent / 'templates' / 't_email.txt.j2'}:2:4: "
                           f"'cart.total': this campaign has no trigger, so there is no "
                           f"event data"), line


def test_validate_audience_file_problems_are_a_clear_error(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c")
    env = home_env(tmp_path / "home")
    r = run_cli("campaign", "validate", str(campaign), "--audience",
                str(tmp_path / "nope.csv"), env=env, ok=False)
    assert "nope.csv: file not found" in r.stderr and "imported" not in r.stderr
    bad = _people(tmp_path, "bad.csv", "id,email\np1,not-an-address\n")
    r = run_cli("campaign", "validate", str(campaign), "--audience", str(bad), env=env,
                ok=False)
    assert "bad.csv:line 2: email" in r.stderr


EXAMPLE_YAML = CASCADE_YAML.replace(
    "trigger: {event: cart_abandoned}",
    "trigger:\n  event: cart_abandoned\n  example: {total: 42, items: [{name: Tent}]}")


def test_trigger_example_is_checked_by_validate_and_shown_by_preview(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = home_env(home)
    typo = write_campaign(tmp_path / "typo", EXAMPLE_YAML,
                          {**TEMPLATES, "t_sms.txt.j2": "Total {{ event.totl }}"})
    r = run_cli("campaign", "validate", str(typo), env=env, ok=False)
    line = _the_problem(r.stderr, typo.parent / "templates" / "t_sms.txt.j2")
    assert ":1:16: 'event.totl' is not in trigger.example (did you mean 'total'?)" in line

    good = write_campaign(tmp_path / "good", EXAMPLE_YAML, {
        **TEMPLATES, "t_sms.txt.j2": "Total {{ event.total }}: {{ cart['items'][0].name }}"})
    run_cli("campaign", "validate", str(good), env=env, ok=True)
    run_cli("customers", "import", str(_people(tmp_path)), env=env, ok=True)
    r = run_cli("campaign", "preview", str(good), "--customer", "p1", "--json", env=env,
                ok=True)
    [sms] = [m for m in json.loads(r.stdout) if m["channel"] == "sms"]
    assert sms["body"] == "Total 42: Tent"
    r = run_cli("campaign", "preview", str(good), "--customer", "p1", "--json", "--event",
                '{"total": 7, "items": [{"name": "Mug"}]}', env=env, ok=True)
    [sms] = [m for m in json.loads(r.stdout) if m["channel"] == "sms"]
    assert sms["body"] == "Total 7: Mug"  # an explicit --event wins
    r = run_cli("campaign", "preview", str(good), "--customer", "p1", "--event", "[1]",
                env=env, ok=False)
    assert "--event is the trigger event's data: a JSON object" in r.stderr


def test_the_readme_walkthrough_validates_imports_and_previews(tmp_path: Path) -> None:
    """README, Walkthrough: the commands as written, on the bundled example."""
    readme = (Path(omnicascade.__file__).parent.parent / "README.md").read_text()
    walk = readme.split("## Walkthrough", 1)[1].split("python - <<'PY'", 1)[0]
    commands = [re.sub(r"\s+#.*$", "", ln).strip() for ln in walk.splitlines()
                if ln.startswith("omnicascade campaign validate")
                or ln.startswith("omnicascade customers import")
                or ln.startswith("omnicascade campaign preview")]
    assert [c.split()[:3] for c in commands] == [
        ["omnicascade", "campaign", "validate"], ["omnicascade", "customers", "import"],
        ["omnicascade", "campaign", "preview"]], commands
    ex = str(Path(omnicascade.__file__).parent / "examples" / "abandoned-cart")
    env = home_env(tmp_path / ".omnicascade")
    outputs = [run_cli(*c.replace("$EX", ex).split()[1:], env=env, cwd=tmp_path, ok=True)
               for c in commands]
    assert "is valid" in outputs[0].stdout
    shown = outputs[2].stdout
    assert "Hi Ada," in shown and "Tent" in shown and "CART-PREVIEW" in shown
    assert "error" not in shown.lower()
    r = run_cli("campaign", "validate", f"{ex}/campaign.yaml", env=env, cwd=tmp_path, ok=True)
    assert "note" not in r.stdout  # imported customers know first_name; the example is there


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_preview_audience_uses_the_files_contacts_and_the_campaigns_channels(
        tmp_path: Path, suffix: str) -> None:
    yaml = four_steps("aud", "1d").replace(
        "  - {channel: telegram, template: t_telegram, wait: 1d}\n", "").replace(
        "  - {channel: push,     template: t_push}\n", "")
    campaign = write_campaign(tmp_path / "c", yaml)
    rows = [{"id": f"p{i}", "email": f"p{i}@example.com", "phone": f"+49151123450{i:02d}",
             "consent_sms": "no" if i < 10 else "yes"} for i in range(40)]
    if suffix == "csv":
        text = "id,email,phone,consent_sms\n" + "".join(
            f"{r['id']},{r['email']},{r['phone']},{r['consent_sms']}\n" for r in rows)
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows)
    people = _people(tmp_path, f"people.{suffix}", text)
    home = tmp_path / "home"
    r = run_cli("campaign", "preview", str(campaign), "--audience", str(people), "--json",
                env=home_env(home), ok=True)
    summary = json.loads(r.stdout)
    assert summary["unknown_customers"] == 0
    assert summary["reachable"] == {"email": 40, "sms": 30}
    assert summary["messages_per_1000"] == {"email": 1000.0, "sms": 750.0}
    r = run_cli("campaign", "preview", str(campaign), "--audience", str(people),
                env=home_env(home), ok=True)
    assert "unknown" not in r.stdout and "telegram" not in r.stdout and "push" not in r.stdout


def test_preview_audience_prefers_the_file_over_stored_customers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = home_env(home)
    run_cli("customers", "import", str(_people(tmp_path, "old.csv", "id,email,phone\n"
                                               "a,a@example.com,+4915112345001\nb,,\n")),
            env=env, ok=True)
    campaign = write_campaign(tmp_path / "c", four_steps("aud", "1d"))
    # a: the file takes SMS consent away (email stays from the database); b: the file
    # gives a push token; c: only an id, nobody imported it
    people = _people(tmp_path, "aud.jsonl", '{"id": "a", "consent_sms": "no"}\n'
                     '{"id": "b", "push_token": "tok-b"}\n{"id": "c"}\n')
    r = run_cli("campaign", "preview", str(campaign), "--audience", str(people), "--json",
                env=env, ok=True)
    summary = json.loads(r.stdout)
    assert summary["reachable"] == {"email": 1, "sms": 0, "telegram": 0, "push": 1}
    assert summary["unknown_customers"] == 1
