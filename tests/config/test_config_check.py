"""`omnicascade config check [--json]`: every setting with its source and secrets masked,
and what would stop production (exit 1); in development, warnings and exit 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.cli import home_env, run_cli

REAL = "k" * 40
CHANNELS = ("email", "sms", "telegram", "push", "whatsapp", "webhook")
# A production configuration with nothing to object to.
CLEAN = {"OMNICASCADE_ENV": "production", "OMNICASCADE_WEBHOOK_SECRET": REAL,
         "OMNICASCADE_API_TOKEN": "t" * 40,
         "OMNICASCADE_DATABASE_URL": "postgresql+psycopg://omni:db-password@db/omni",
         "OMNICASCADE_TEMPORAL_ADDRESS": "temporal:7233",
         **{f"OMNICASCADE_{c.upper()}_PROVIDER": "outbox" for c in CHANNELS}}


def check(tmp_path: Path, *args: str, **variables: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("config", "check", "--json", *args, env=home_env(tmp_path / "home",
                                                                   **variables), cwd=tmp_path)
    return r.returncode, json.loads(r.stdout)


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["variable"]: row for row in data["settings"]}


def test_a_clean_production_configuration_passes_with_secrets_masked(tmp_path: Path) -> None:
    code, data = check(tmp_path, **CLEAN)
    assert (code, data["problems"], data["production"]) == (0, [], True), data
    seen = rows(data)
    assert seen["OMNICASCADE_WEBHOOK_SECRET"] == {
        "variable": "OMNICASCADE_WEBHOOK_SECRET", "setting": "webhook_secret",
        "value": "**** (40 characters)", "source": "env"}
    assert seen["OMNICASCADE_DATABASE_URL"]["value"] == \
        "postgresql+psycopg://omni:****@db/omni"
    assert seen["OMNICASCADE_API_PORT"] == {"variable": "OMNICASCADE_API_PORT",
                                            "setting": "api_port", "value": 8787,
                                            "source": "default"}
    assert REAL not in json.dumps(data) and "db-password" not in json.dumps(data)


def test_sources_env_dotenv_generated_file_and_default(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "api_token").write_text("generated-token-0123456789\n")
    (tmp_path / ".env").write_text(f"OMNICASCADE_TWILIO_AUTH_TOKEN={REAL}\n"
                                   "OMNICASCADE_SMS_RATE=3\n")
    code, data = check(tmp_path, OMNICASCADE_SMS_RATE="5")
    seen = rows(data)
    assert seen["OMNICASCADE_SMS_RATE"]["source"] == "env"  # the environment wins
    assert seen["OMNICASCADE_SMS_RATE"]["value"] == 5.0
    assert seen["OMNICASCADE_TWILIO_AUTH_TOKEN"]["source"] == ".env"
    assert seen["OMNICASCADE_TWILIO_AUTH_TOKEN"]["value"] == "**** (40 characters)"
    assert seen["OMNICASCADE_API_TOKEN"]["source"] == "generated file"
    assert seen["OMNICASCADE_API_TOKEN"]["value"] is None
    assert seen["OMNICASCADE_EMAIL_PROVIDER"]["source"] == "default"
    assert code == 0  # development: what production would refuse is only a warning


def test_every_production_problem_is_listed_and_exits_1(tmp_path: Path) -> None:
    env = {**CLEAN, "OMNICASCADE_API_TOKEN": "changeme",
           "OMNICASCADE_TELEGRAM_WEBHOOK_SECRET": "short",
           "OMNICASCADE_API_HOST": "0.0.0.0", "OMNICASCADE_SMS_RAET": "5"}
    del env["OMNICASCADE_DATABASE_URL"], env["OMNICASCADE_EMAIL_PROVIDER"], \
        env["OMNICASCADE_WEBHOOK_SECRET"]
    code, data = check(tmp_path, **env)
    assert code == 1
    text = "\n".join(data["problems"])
    for expected in ("OMNICASCADE_WEBHOOK_SECRET must be set to a real secret",
                     "OMNICASCADE_API_TOKEN must be set to a real secret",
                     "OMNICASCADE_TELEGRAM_WEBHOOK_SECRET looks like a placeholder",
                     "OMNICASCADE_EMAIL_PROVIDER is not set: email messages would only be "
                     "recorded in the outbox",
                     "the database is SQLite", "cannot count processes",
                     "listens on 0.0.0.0", "OMNICASCADE_PUBLIC_URL"):
        assert expected in text, text
    assert len(data["problems"]) == 6, text
    assert data["warnings"] == ["OMNICASCADE_SMS_RAET is not a setting omnicascade reads: "
                                "ignored; did you mean OMNICASCADE_SMS_RATE?"]


def test_development_warns_and_production_flag_judges(tmp_path: Path) -> None:
    code, data = check(tmp_path, OMNICASCADE_WEBHOOK_SECRET="dev")
    assert code == 0 and data["problems"] == [] and not data["production"]
    assert any(w.startswith("in production: OMNICASCADE_WEBHOOK_SECRET must be set to a real")
               for w in data["warnings"]), data["warnings"]
    code, data = check(tmp_path, "--production", OMNICASCADE_WEBHOOK_SECRET="dev")
    assert code == 1 and data["production"]
    assert any("OMNICASCADE_WEBHOOK_SECRET must be set to a real secret" in p for p in data["problems"])


def test_the_table_says_the_same(tmp_path: Path) -> None:
    r = run_cli("config", "check", env=home_env(tmp_path / "home", **CLEAN,
                                                  OMNICASCADE_PUBLIC_URL="https://x.example"),
                cwd=tmp_path, ok=True)
    assert "OMNICASCADE_WEBHOOK_SECRET" in r.stdout and REAL not in r.stdout
    assert "no problem for production" in r.stdout
    bad = run_cli("config", "check", env=home_env(tmp_path / "home", OMNICASCADE_ENV=
                                                    "production"), cwd=tmp_path, ok=False)
    assert "problem:" in bad.stderr and "would stop production" in bad.stdout


def test_an_unreadable_setting_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    code, data = check(tmp_path, OMNICASCADE_SMS_RATE="fast")
    assert code == 1 and "sms_rate" in data["problems"][0]


def test_a_worker_names_a_misspelt_variable_at_start(tmp_path: Path) -> None:
    """The WARNING comes before anything else can fail (here: no Temporal to reach), with
    the variable from the environment and one from .env."""
    (tmp_path / ".env").write_text("OMNICASCADE_EMAIL_PROVDER=sendgrid\n")
    r = run_cli("worker", env=home_env(tmp_path / "home", OMNICASCADE_SMS_RAET="5",
                                       OMNICASCADE_TEMPORAL_ADDRESS="127.0.0.1:1"),
                cwd=tmp_path, process=True, ok=False, timeout=60)
    assert any("WARNING" in line and "OMNICASCADE_SMS_RAET is not a setting omnicascade "
               "reads: ignored; did you mean OMNICASCADE_SMS_RATE?" in line
               for line in r.stderr.splitlines()), r.stderr
    assert "OMNICASCADE_EMAIL_PROVDER is not a setting omnicascade reads: ignored; did you " \
           "mean OMNICASCADE_EMAIL_PROVIDER?" in r.stderr, r.stderr
    assert "cannot reach Temporal" in r.stderr
