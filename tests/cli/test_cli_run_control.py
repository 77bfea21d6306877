"""`runs stop|pause|resume` through the installed `omnicascade` command, on a database written
by hand and no Temporal at all: the change stands (the send-time guard enforces it), the
command says the cascades were not told, and the reports count what was stopped."""

from __future__ import annotations

import json

import pytest

from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from tests.helpers.cascades import add_customers
from tests.helpers.cli import home_env, run_cli
from tests.helpers.reports import T0, launch, member, send


@pytest.fixture
def env(settings, tmp_path) -> dict[str, str]:  # noqa: ANN001
    return home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)


@pytest.fixture
def run_id(settings, tmp_path) -> str:  # noqa: ANN001
    """A listening run: `a` waits after its email, `b` has finished."""
    rid = launch(settings, tmp_path / "campaign")
    add_customers(settings, {"id": "a"}, {"id": "b"})
    with session_scope(settings.db_url) as s:
        a = member(s, rid, "a", "control", status="active")
        send(s, a, 0, "email", T0)
        member(s, rid, "b", "control")
    return rid


def test_pause_resume_stop_with_json_and_exit_codes(env, settings, run_id):
    r = run_cli("runs", "pause", run_id, "--json", env=env, ok=True)
    assert json.loads(r.stdout) == {"run_id": run_id, "status": "paused"}
    assert "1 cascade(s) not told at once" in r.stderr and "paused in the database" in r.stderr
    r = run_cli("runs", "pause", run_id, env=env, ok=True)  # again: nothing changes
    assert "already paused" in r.stdout
    r = run_cli("runs", "resume", run_id, env=env, ok=True)
    assert f"run {run_id} resumed (listening)" in r.stdout
    r = run_cli("runs", "stop", run_id, "--json", env=env, ok=True)
    assert json.loads(r.stdout) == {"run_id": run_id, "status": "stopped"}
    with session_scope(settings.db_url) as s:
        a = s.get(Enrollment, "enr_a")
        assert (a.status, a.exit_reason) == ("stopped", "stopped")
        assert s.get(Enrollment, "enr_b").status == "completed"
    r = run_cli("runs", "resume", run_id, env=env, ok=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == f"error: run {run_id} is stopped; a stopped run cannot be resumed"
    r = run_cli("runs", "stop", "run_nope", "--drain", env=env, ok=False)
    assert r.returncode == 1 and "no run 'run_nope'" in r.stderr


def test_reports_show_version_status_and_stopped_cascades(env, run_id):
    run_cli("runs", "stop", run_id, env=env, ok=True)
    [row] = json.loads(run_cli("runs", "list", "--json", env=env, ok=True).stdout)
    assert (row["version"], row["status"], row["stopped"], row["exited"]) == (1, "stopped", 1, 0)
    show = json.loads(run_cli("runs", "show", run_id, "--json", env=env, ok=True).stdout)
    assert (show["version"], show["status"], show["stopped"]) == (1, "stopped", 1)
    assert show["stopped_by_reason"] == {"stopped": 1} and show["exited_by_reason"] == {}
    assert "stopped 1 (run stopped 1)" in run_cli("runs", "show", run_id, env=env,
                                                  ok=True).stdout  # the reason in words
    report = json.loads(run_cli("report", run_id, "--json", env=env, ok=True).stdout)
    assert (report["status"], report["stopped"], report["stopped_by_reason"]) == (
        "stopped", 1, {"stopped": 1})
    assert any("1 stopped (run stopped 1)" in n for n in report["notes"])
    who = json.loads(run_cli("customers", "show", "a", "--json", env=env, ok=True).stdout)
    assert [(e["status"], e["exit_reason"]) for e in who["enrollments"]] == [("stopped",
                                                                              "stopped")]
    text = run_cli("customers", "show", "a", env=env, ok=True).stdout
    assert "cascades ended early: stopped 1 (run stopped 1)" in text
    assert "stopped · run stopped" in text  # the cascade's status in words
