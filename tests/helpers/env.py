"""Settings as a process started now would read them.

Settings reads the environment once, when it is made (config/ is the only reader); a test
that sets provider variables with monkeypatch.setenv after the `settings` fixture was made
re-reads them as a restarted process would."""

from __future__ import annotations

from omnicascade.config import Settings, load_settings
from omnicascade.config.channels import ChannelSettings


def reread(settings: Settings) -> Settings:
    """`settings` with its channel part (providers, rates, each provider's own settings)
    read again from the environment; the rest as given. A refused value is a ConfigError,
    as at a process's start."""
    return load_settings(**settings.model_dump(exclude=set(ChannelSettings.model_fields)))
