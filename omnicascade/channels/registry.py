"""Which provider serves each channel. Every channel uses the outbox unless configured."""

from __future__ import annotations

import os

from omnicascade.channels.base import Channel
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.config import ConfigError, Settings
from omnicascade.spec import CHANNELS


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name in CHANNELS:
        provider = os.environ.get(f"OMNICASCADE_{name.upper()}_PROVIDER", "outbox").lower()
        if provider != "outbox":
            raise ConfigError(f"OMNICASCADE_{name.upper()}_PROVIDER={provider!r}: only 'outbox' "
                              f"is available in this version")
        channels[name] = OutboxChannel(settings.db_url)
    return channels
