"""Temporal for a command that writes first and tells the cascades after: connected only
once the database change is committed, within 10 s, and quietly — when it does not answer,
`why` says so and the command prints its own warning (the change stands either way: every
send reads the database first). Imported lazily by the commands that need it."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from omnicascade.cascade.temporal import LazyClient, connect
from omnicascade.errors import ConfigError


class TemporalLater(LazyClient):
    why = ""

    async def get(self) -> Client | None:
        try:
            return await asyncio.wait_for(connect(self.settings), 10)
        except (TimeoutError, ConfigError) as exc:
            self.why = str(exc).rstrip(".") or "no answer in 10 s"
            return None
