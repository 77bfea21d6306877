"""Which variables Settings reads, where each value came from (environment, .env, a file
generated in the state dir, or the default), and the OMNICASCADE_* variables no setting
reads: a misspelt one (OMNICASCADE_SMS_RAET) is otherwise silently ignored."""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

from dotenv import dotenv_values

from omnicascade.config import SECRETS, Settings
from omnicascade.config.providers import PROVIDER_MODELS

PREFIX = "OMNICASCADE_"
# Variables with the prefix that are not settings: the test suite's, not omnicascade's.
NOT_SETTINGS = frozenset({f"{PREFIX}{name}" for name in (
    "TEST_POSTGRES_URL", "REQUIRE_POSTGRES", "REQUIRE_BROWSER", "CONSOLE_SCREENSHOTS",
    "FUZZ_EXAMPLES", "API_FUZZ_EXAMPLES")})
# Settings that hold a secret besides SECRETS and the providers' secret_fields (masked).
SECRET_FIELDS = frozenset({*SECRETS, "link_secret", "session_secret", "pseudonym_key",
                           "temporal_api_key"})


def variables() -> dict[str, str]:
    """Every variable Settings reads → the settings it fills (`sms_rate`, `sendgrid.api_key`;
    OMNICASCADE_TELEGRAM_RATE fills two: `telegram_rate, telegram.rate`)."""
    out: dict[str, str] = {}
    for field in Settings.model_fields:
        model = PROVIDER_MODELS.get(field)
        pairs = [(f"{PREFIX}{field.upper()}", field)] if model is None else \
            [(model.env(name), f"{field}.{name}") for name in model.model_fields]
        for variable, path in pairs:
            out[variable] = f"{out[variable]}, {path}" if variable in out else path
    return out


def _env_file() -> Path:
    return Path(str(Settings.model_config.get("env_file") or ".env"))


def given() -> dict[str, str]:
    """The OMNICASCADE_* variables set, upper-cased → "env" or ".env" (the environment wins,
    as in Settings)."""
    found: dict[str, str] = {}
    path = _env_file()
    if path.is_file():
        found.update({k.upper(): ".env" for k in dotenv_values(path)
                      if k.upper().startswith(PREFIX)})
    found.update({k.upper(): "env" for k in os.environ if k.upper().startswith(PREFIX)})
    return found


def raw(variable: str) -> str | None:
    """A variable's text as Settings would see it (environment first, then .env)."""
    for name, value in os.environ.items():
        if name.upper() == variable:
            return value
    path = _env_file()
    values = dotenv_values(path) if path.is_file() else {}
    return next((v for k, v in values.items() if k.upper() == variable), None)


def source_of(variable: str, path: str, settings: Settings,
              seen: dict[str, str] | None = None) -> str:
    """env, .env, generated file (a development secret in the state dir) or default."""
    seen = given() if seen is None else seen
    if variable in seen:
        return seen[variable]
    if path in SECRETS and (settings.home_dir / path).is_file():
        return "generated file"
    return "default"


def unknown() -> dict[str, str | None]:
    """Each OMNICASCADE_* variable (environment or .env) no setting reads → the closest
    name of one that is read (None when nothing is close)."""
    known = variables()
    out: dict[str, str | None] = {}
    for name in sorted(given()):
        if name not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            out[name] = close[0] if close else None
    return out


def warn_unknown(log: logging.Logger | None = None) -> dict[str, str | None]:
    """At start (server, worker, api): a WARNING per variable no setting reads. Names only:
    a value may be a secret."""
    log = log or logging.getLogger("omnicascade.config")
    found = unknown()
    for name, close in found.items():
        hint = f"; did you mean {close}?" if close else ""
        log.warning("%s is not a setting omnicascade reads: ignored%s", name, hint)
    return found
