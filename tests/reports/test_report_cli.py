"""The report commands through the installed `omnicascade` command, on a database written
by hand (no Temporal needed): `runs list`, `runs show --watch`, `report` and its errors."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta

import pytest

from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from tests.helpers.cli import OMNI, home_env, run_cli
from tests.helpers.reports import EXPERIMENT_YAML, T0, conversion, launch, member, send

AUDIENCE_YAML = EXPERIMENT_YAML.replace("trigger: {event: cart_abandoned}\n", "")


@pytest.fixture
def env(settings, tmp_path) -> dict[str, str]:
    return home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)


@pytest.fixture
def live_run(settings, tmp_path) -> str:
    """An audience run in progress: one customer bought, one waits after the email."""
    rid = launch(settings, tmp_path / "campaign", AUDIENCE_YAML)
    with session_scope(settings.db_url) as s:
        a = member(s, rid, "a", "control")
        send(s, a, 0, "email", T0)
        conversion(s, a, T0 + timedelta(hours=3), 25)
        b = member(s, rid, "b", "control", status="active")
        send(s, b, 0, "email", T0)
    return rid


def test_runs_list_shows_status_counts_and_rate(env, live_run):
    rows = json.loads(run_cli("runs", "list", "--json", env=env, ok=True).stdout)
    assert [(r["run_id"], r["status"], r["enrolled"], r["converted"], r["conversion_rate"])
            for r in rows] == [(live_run, "running", 2, 1, 0.5)]
    table = run_cli("runs", "list", env=env, ok=True).stdout
    assert live_run in table and "50.0%" in table and "rate" in table


def test_runs_show_watch_refreshes_until_the_run_completes(env, settings, live_run,
                                                           tmp_path):
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        proc = subprocess.Popen([OMNI, "runs", "show", live_run, "--watch", "--interval",
                                 "0.2"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while "refreshing every 0.2s" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.1)
        first = log.read_text()
        assert "waiting" in first and "running" in first
        with session_scope(settings.db_url) as s:  # b gets the SMS, then the run ends
            b = s.get(Enrollment, "enr_b")
            send(s, b, 1, "sms", T0 + timedelta(hours=24))
            b.status = "completed"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    final = text[len(first):]
    assert "completed" in final and "final" in final and "sms" in final
    assert "Traceback" not in text


def test_runs_show_watch_refuses_json(env, live_run):
    r = run_cli("runs", "show", live_run, "--watch", "--json", env=env, ok=False)
    assert r.returncode == 1 and "--watch" in r.stderr


def test_runs_show_json_keeps_its_contract(env, live_run):
    show = json.loads(run_cli("runs", "show", live_run, "--json", env=env, ok=True).stdout)
    assert {"run_id", "campaign", "status", "enrolled", "converted", "steps",
            "variants"} <= set(show)
    assert show["variants"] == {"control": {"enrolled": 2, "converted": 1}}
    [step] = show["steps"]
    assert {k: step[k] for k in ("index", "channel", "sent", "skipped", "failed")} == \
        {"index": 0, "channel": "email", "sent": 2, "skipped": 0, "failed": 0}
    assert step["waiting"] == 1


def test_report_terminal_and_json(env, live_run):
    text = run_cli("report", live_run, env=env, ok=True).stdout
    assert "Conversion by variant" in text and "Funnel" in text and "last touch" in text
    data = json.loads(run_cli("report", live_run, "--json", env=env, ok=True).stdout)
    # a superset of `runs show --json`
    assert {"run_id", "campaign", "status", "enrolled", "converted", "steps",
            "variants"} <= set(data)
    assert data["variants"]["control"]["enrolled"] == 2
    assert data["experiment"] is None and data["lift"] is None  # one variant, no holdout


def test_report_of_unknown_run_is_a_clear_error(env, settings):
    r = run_cli("report", "run_nope", env=env, ok=False)
    assert r.returncode == 1 and "no run 'run_nope'" in r.stderr


def test_report_commands_have_help(env):
    report = run_cli("report", "--help", env=env, ok=True).stdout
    assert "--json" in report and "--csv" in report and "--html" in report
    show = run_cli("runs", "show", "--help", env=env, ok=True).stdout
    assert "--json" in show and "--watch" in show
