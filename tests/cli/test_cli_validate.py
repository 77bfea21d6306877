"""`omnicascade campaign validate` through the installed command, and help for every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from omnicascade.cli.main import app
from tests.helpers.campaigns import CASCADE_YAML, TEMPLATES, write_campaign
from tests.helpers.cli import home_env, run_cli


def test_valid_campaign(tmp_path: Path) -> None:
    path = write_campaign(tmp_path / "c")
    home = tmp_path / "home"
    r = run_cli("campaign", "validate", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test-cascade" in r.stdout and "valid" in r.stdout
    assert r.stderr == ""
    assert not home.exists()

    r = run_cli("campaign", "validate", "--json", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["campaign"], out["valid"], out["steps"]) == ("test-cascade", True, 4)
    assert not home.exists()


def _no_sms_body() -> dict[str, str]:
    return {k: v for k, v in TEMPLATES.items() if k != "t_sms.txt.j2"}


# (yaml edit, templates, file that holds the problem ("yaml" or a template name), line, reason)
BAD = {
    "wrong-key": (("template: t_sms,      wait: 24h", "template: t_sms, wiat: 24h"), TEMPLATES,
                  "yaml", 9, "unknown key 'wiat' (did you mean 'wait'?)"),
    "bad-duration": (("template: t_sms,      wait: 24h", "template: t_sms, wait: 24 hours"),
                     TEMPLATES, "yaml", 9, "'24 hours' is not a duration"),
    "unknown-channel": (("{channel: sms, ", "{channel: fax, "), TEMPLATES, "yaml", 9,
                        "unknown channel 'fax'; use one of email, sms, whatsapp, telegram, push, webhook"),
    "missing-template": (("", ""), _no_sms_body(), "yaml", 9, "t_sms.txt.j2 which does not exist"),
    "template-syntax": (("", ""), {**TEMPLATES, "t_telegram.txt.j2": "Hi\n{% if %}\n"},
                        "t_telegram.txt.j2", 2, "template syntax error"),
    "unknown-variable": (("", ""), {**TEMPLATES, "t_telegram.txt.j2": "Hi {{ custmer.id }}"},
                         "t_telegram.txt.j2", 1, "unknown variable 'custmer'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_campaign_is_reported_and_nothing_written(tmp_path: Path, case: str) -> None:
    (old, new), templates, where, line, reason = BAD[case]
    text = CASCADE_YAML.replace(old, new) if old else CASCADE_YAML
    assert text != CASCADE_YAML or not old
    path = write_campaign(tmp_path / "c", text, templates)
    home = tmp_path / "home"
    r = run_cli("campaign", "validate", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 1
    shown = str(path) if where == "yaml" else str(path.parent / "templates" / where)
    lines = [ln.strip() for ln in r.stderr.splitlines()]
    hits = [ln for ln in lines if ln.startswith(f"{shown}:{line}:")]
    assert hits, r.stderr
    assert reason in hits[0]
    assert "Traceback" not in r.stdout + r.stderr
    assert "valid (" not in r.stdout
    assert not home.exists()


def test_every_problem_of_yaml_templates_and_data_in_one_run_sorted(tmp_path: Path) -> None:
    """Issue 27 (5): a bad trigger.key, a misspelt `wiat` and customer.frist_name in a
    template are reported together (not the template's after the YAML's are fixed), sorted
    by file and line."""
    text = CASCADE_YAML.replace("trigger: {event: cart_abandoned}",
                                "trigger: {event: cart_abandoned, key: cart id}").replace(
        "template: t_sms,      wait: 24h", "template: t_sms, wiat: 24h")
    path = write_campaign(tmp_path / "c", text, {
        **TEMPLATES, "t_telegram.txt.j2": "Hi {{ customer.frist_name }}"})
    audience = tmp_path / "people.csv"
    audience.write_text("id,email,first_name\nc1,c1@example.com,Ada\n")
    r = run_cli("campaign", "validate", str(path), "--audience", str(audience),
                env=home_env(tmp_path / "home"), cwd=tmp_path, ok=False)
    problems = [ln.strip() for ln in r.stderr.splitlines() if ln.startswith("  ")]
    template = str(path.parent / "templates" / "t_telegram.txt.j2")
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{path}:2:39", f"{path}:9:42", f"{template}:1:16"], r.stderr
    assert "'cart id' is not a field name" in problems[0]
    assert "unknown key 'wiat' (did you mean 'wait'?)" in problems[1]
    assert "unknown customer attribute 'frist_name' (did you mean 'first_name'?)" in \
        problems[2]


def test_missing_campaign_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run_cli("campaign", "validate", str(tmp_path / "nope.yaml"), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 1
    assert f"{tmp_path / 'nope.yaml'}: file not found" in r.stderr
    assert "Traceback" not in r.stderr and not home.exists()


# ---- help text ---------------------------------------------------------------------------------

def _walk(cmd: Any, path: str) -> list[tuple[str, Any]]:
    # duck-typed: recent typer ships its own copy of click, so no isinstance(click.Group)
    found = [(path, cmd)]
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        found += _walk(sub, f"{path} {name}")
    return found


def test_every_command_has_help() -> None:
    commands = _walk(typer.main.get_command(app), "omnicascade")
    names = {p for p, _ in commands}
    # the commands docs/architecture.md §4 promises
    for expected in ["server", "demo", "campaign validate", "campaign launch",
                     "campaign preview", "customers import", "customers show", "runs list",
                     "runs show", "outbox", "convert", "report", "worker", "api", "db upgrade"]:
        assert f"omnicascade {expected}" in names
    assert len(commands) >= 20
    missing = [p for p, c in commands if not (c.help or "").strip()]
    assert missing == []


def test_help_runs_for_every_command() -> None:
    for path, _ in _walk(typer.main.get_command(app), "omnicascade"):
        args = path.split()[1:]
        r = CliRunner().invoke(app, [*args, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "Usage" in r.output
        # a flag takes no value: no type tag (`--live <bool>`, `--help <bool>`) after it
        assert "<bool>" not in r.output, (path, r.output)
