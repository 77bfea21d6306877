"""Which provider serves each channel: `OMNICASCADE_<CHANNEL>_PROVIDER` (Settings.provider_for).
Every channel uses the outbox unless configured; a provider's SDK is imported only when it
is selected, and a misconfigured provider stops the worker at start with a clear message."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from omnicascade.channels.base import Channel
from omnicascade.channels.callbacks import WebhookProvider
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.config import Settings
from omnicascade.errors import ConfigError
from omnicascade.vocabulary import CHANNELS

# channel → provider name → "module:Class" (the class has `from_settings(settings)`)
PROVIDERS: dict[str, dict[str, str]] = {
    "email": {"sendgrid": "omnicascade.channels.sendgrid_email:SendGridChannel"},
    "sms": {"twilio": "omnicascade.channels.twilio_sms:TwilioChannel"},
    "whatsapp": {"twilio": "omnicascade.channels.twilio_whatsapp:WhatsAppChannel"},
    "telegram": {"telegram": "omnicascade.channels.telegram_bot:TelegramChannel"},
    "push": {"fcm": "omnicascade.channels.fcm_push:FcmChannel"},
    # the shop's own receiver (OMNICASCADE_WEBHOOK_CHANNEL_URL), chosen explicitly
    "webhook": {"http": "omnicascade.channels.webhook_channel:WebhookChannel"},
}


# provider webhook (the URL segment under /webhooks/) → ("module:Class", OpenAPI summary)
WEBHOOKS: dict[str, tuple[str, str]] = {
    "sendgrid": ("omnicascade.channels.sendgrid_email:SendGridWebhook",
                 "SendGrid Event Webhook (signed)"),
    "twilio": ("omnicascade.channels.twilio_webhook:TwilioWebhook",
               "Twilio status callbacks, incoming SMS and WhatsApp (signed)"),
    "telegram": ("omnicascade.channels.telegram_link:TelegramWebhook",
                 "Telegram bot updates (secret token)"),
}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_channel(channel: str, provider: str, settings: Settings) -> Channel:
    if provider == "outbox":
        return OutboxChannel(settings.db_url)
    target = PROVIDERS[channel].get(provider)
    if target is None:
        choices = ", ".join(["outbox", *PROVIDERS[channel]])
        raise ConfigError(f"OMNICASCADE_{channel.upper()}_PROVIDER={provider!r} is not a "
                          f"provider for {channel}; use one of: {choices}")
    try:
        channel_: Channel = _load(target).from_settings(settings)
    except ValidationError as exc:  # e.g. OMNICASCADE_TWILIO_RATE=fast
        raise ConfigError(f"{channel} provider {provider!r}: {exc}") from None
    return channel_


def build_channels(settings: Settings) -> dict[str, Channel]:
    return {name: build_channel(name, settings.provider_for(name), settings) for name in CHANNELS}


def build_webhook(name: str, settings: Settings) -> WebhookProvider:
    try:
        provider: WebhookProvider = _load(WEBHOOKS[name][0]).from_settings(settings)
    except ValidationError as exc:
        raise ConfigError(f"{name} webhook: {exc}") from None
    return provider
