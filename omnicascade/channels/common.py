"""What every real provider shares: its settings (a model nested in config.Settings, which
alone reads the environment and refuses placeholder secrets in production), and the one
question that decides retry vs. ambiguous — did the request ever reach the provider?"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from omnicascade.config.providers import ProviderSettings

__all__ = ["ProviderSettings", "fit_into_activity", "never_connected", "own_copy"]
P = TypeVar("P", bound=ProviderSettings)

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


def fit_into_activity(config: ProviderSettings, send_timeout_s: float) -> float:
    """Keep pacing wait + provider timeout inside the deliver activity's timeout: an attempt
    the activity timeout cuts off mid-call can only be recorded as `unknown`. Returns the
    longest wait for a rate-limit slot; caps the provider timeout to what is left."""
    max_wait = send_timeout_s / 4
    cap = send_timeout_s * 0.6
    if getattr(config, "timeout_s", 0) > cap:
        config.timeout_s = cap  # type: ignore[attr-defined]
    return max_wait


def own_copy(config: P) -> P:
    """A channel's own copy of its settings: it adjusts them (timeouts, credentials) without
    changing the process's one Settings."""
    return config.model_copy(deep=True)
