"""What every real provider shares: settings from the environment (and .env), refusal of
placeholder secrets in production, and the one question that decides retry vs. ambiguous —
did the request ever reach the provider?"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic_settings import BaseSettings

from omnicascade.config import looks_like_placeholder
from omnicascade.errors import ConfigError

# Exception class names (anywhere in an error's cause chain) proving that no byte of the
# request reached the provider: DNS failure, connection refused, connect/pool timeout.
_NEVER_CONNECTED = frozenset({
    "ConnectionRefusedError", "gaierror", "NewConnectionError", "NameResolutionError",
    "ConnectTimeoutError", "ConnectTimeout", "ConnectError", "PoolTimeout",
})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None),
                             *getattr(e, "args", ())) if isinstance(x, BaseException)]


def never_connected(exc: BaseException) -> bool:
    """True only when the error proves the request never reached the provider. A reset or
    a read timeout after the request went out is NOT such proof: that send is ambiguous."""
    return any(c.__name__ in _NEVER_CONNECTED for e in _chain(exc) for c in type(e).__mro__)


def retry_after_seconds(headers: Mapping[str, Any] | None, default: float | None = None
                        ) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = None
    for key, v in (headers or {}).items():
        if str(key).lower() == "retry-after":
            value = str(v).strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def fit_into_activity(config: ProviderSettings, send_timeout_s: float) -> float:
    """Keep pacing wait + provider timeout inside the deliver activity's timeout: an attempt
    the activity timeout cuts off mid-call can only be recorded as `unknown`. Returns the
    longest wait for a rate-limit slot; caps the provider timeout to what is left."""
    max_wait = send_timeout_s / 4
    cap = send_timeout_s * 0.6
    if getattr(config, "timeout_s", 0) > cap:
        config.timeout_s = cap  # type: ignore[attr-defined]
    return max_wait


class ProviderSettings(BaseSettings):
    """Base for per-provider settings (each subclass sets its own OMNICASCADE_<X>_ prefix)."""

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise ConfigError(f"{self._env(missing[0])} must be set to use this provider "
                              f"(missing: {', '.join(self._env(n) for n in missing)})")

    def refuse_placeholders(self, production: bool, *names: str) -> None:
        """Outside development a placeholder secret is a mistake, never a test value."""
        if not production:
            return
        for name in names:
            value = getattr(self, name)
            if value is not None and looks_like_placeholder(str(value)):
                raise ConfigError(f"{self._env(name)} looks like a placeholder; set the real "
                                  f"secret when OMNICASCADE_ENV=production")

    def _env(self, name: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{name}".upper()
