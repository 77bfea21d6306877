"""`omnicascade convert`: the same path as POST /v1/conversions, without HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from omnicascade.config import ConfigError, Settings
from omnicascade.conversions import ConversionIn, record_conversion, signal_conversion
from omnicascade.db.session import session_scope
from omnicascade.temporal_client import connect


async def convert_by_hand(data: ConversionIn, settings: Settings) -> tuple[dict[str, Any], bool]:
    def tx():  # noqa: ANN202
        with session_scope(settings.db_url) as session:
            return record_conversion(data, session=session)
    outcome = await asyncio.to_thread(tx)  # committed first: the send-time guard sees it
    if not outcome.to_signal:
        return outcome.body(), True
    try:
        client = await connect(settings)
    except ConfigError:
        return outcome.body(), False
    await signal_conversion(client, outcome, settings.signal_timeout_s)
    return outcome.body(), True
