"""Connect to Temporal: the embedded dev server by default, a cluster or Cloud when configured."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError

from omnicascade.config import ConfigError, Settings


async def connect(settings: Settings) -> Client:
    address = settings.resolved_temporal_address()
    try:
        return await Client.connect(address, namespace=settings.temporal_namespace,
                                    tls=settings.temporal_tls or bool(settings.temporal_api_key),
                                    api_key=settings.temporal_api_key)
    except (RuntimeError, RPCError, OSError) as exc:
        hint = " — is `omnicascade server` running?" if settings.embedded else ""
        raise ConfigError(f"cannot reach Temporal at {address}{hint} ({exc})") from None
