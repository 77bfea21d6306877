"""`omnicascade config check`: the effective configuration (secrets masked), where each value
came from, and every problem that would stop production.

Problems are judged by the production rules when OMNICASCADE_ENV=production or `--production`
is given; in development they are reported as warnings (exit 0), so a developer sees what
production would refuse without being blocked. The settings are read with the production
refusal switched off (env=development), so every problem is listed, not just the first.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import ValidationError

from omnicascade.config import Settings
from omnicascade.config.channels import ChannelSettings
from omnicascade.config.providers import PROVIDER_MODELS
from omnicascade.config.sources import SECRET_FIELDS, given, raw, source_of, unknown, variables
from omnicascade.errors import ConfigError

_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")
PROVIDER_FIELDS = [f for f in ChannelSettings.model_fields if f.endswith("_provider")]


def is_loopback(host: str) -> bool:
    """Only this machine can connect to `host` (an unknown name counts as reachable)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _is_secret(path: str) -> bool:
    field, _, name = path.split(", ")[0].partition(".")
    model = PROVIDER_MODELS.get(field)
    return name in model.secret_fields if model else field in SECRET_FIELDS


def _value(settings: Settings, path: str) -> Any:
    field, _, name = path.split(", ")[0].partition(".")
    value = getattr(settings, field)
    return getattr(value, name) if name else value


def shown(path: str, value: Any) -> Any:
    """A value as `config check` prints it: a secret as its length only, a URL without its
    password."""
    if value is None:
        return None
    if _is_secret(path):
        keys = [k for k in str(value).split(",") if k.strip()]
        return f"**** ({len(keys)} key{'s' if len(keys) != 1 else ''})" \
            if len(keys) > 1 else f"**** ({len(str(value))} characters)"
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1****@", value)
    return value if isinstance(value, (bool, int, float)) else str(value)


def problems(settings: Settings, seen: dict[str, str]) -> list[str]:
    """What production would refuse, or would run wrongly with: one sentence each."""
    found = settings.secret_problems()  # the ones Settings refuses in production
    if settings.api_token is None:
        found.append("OMNICASCADE_API_TOKEN is not set: the API does not start without it "
                     "in production (a generated one is for development only)")
    for field in PROVIDER_FIELDS:
        variable, channel = f"OMNICASCADE_{field.upper()}", field.removesuffix("_provider")
        if settings.provider_for(channel) == "outbox" and variable not in seen:
            found.append(f"{variable} is not set: {channel} messages would only be recorded "
                         f"in the outbox, never sent (set a provider, or set it to `outbox` "
                         f"explicitly if no campaign sends {channel})")
    if settings.db_url.startswith("sqlite"):
        found.append("the database is SQLite: production runs a worker and an API process "
                     "(often more), and SQLite is not safe to share between processes; this "
                     "check cannot count processes, so set OMNICASCADE_DATABASE_URL to "
                     "PostgreSQL")
    if settings.temporal_address is None:
        found.append("OMNICASCADE_TEMPORAL_ADDRESS is not set: the embedded Temporal dev "
                     "server is for development only")
    if not is_loopback(settings.api_host) and not settings.public_url:
        found.append(f"the API listens on {settings.api_host} (not this machine only) without "
                     f"OMNICASCADE_PUBLIC_URL: links in messages and provider webhooks would "
                     f"point at the bind address")
    return found


def report(production: bool = False) -> tuple[dict[str, Any], int]:
    """The check as data, and its exit code: 1 when production is judged and has problems
    (or the settings cannot be read at all)."""
    configured = (raw("OMNICASCADE_ENV") or "development").strip().lower()
    production = production or configured == "production"
    try:
        settings = Settings(env="development")  # read everything; judge below
    except (ValidationError, ConfigError) as exc:
        return {"env": configured, "production": production, "settings": [],
                "problems": [f"the settings cannot be read: {exc}"], "warnings": []}, 1
    seen = given()
    rows = [{"variable": variable, "setting": path,
             "value": shown(path, _value(settings, path)),
             "source": source_of(variable, path, settings, seen)}
            for variable, path in sorted(variables().items())]
    found = problems(settings, seen)
    warnings = [f"{name} is not a setting omnicascade reads: ignored"
                + (f"; did you mean {close}?" if close else "")
                for name, close in unknown().items()]
    if not production:  # what production would refuse, as warnings
        warnings, found = [*warnings, *(f"in production: {p}" for p in found)], []
    return {"env": configured, "production": production, "settings": rows,
            "problems": found, "warnings": warnings}, 1 if found else 0
