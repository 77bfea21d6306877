"""The channels' part of Settings: which provider serves each channel, each channel's rate
across workers (channels/queues.py), and each provider's own settings (config/providers.py).
A mixin, so Settings stays one class whose variables keep their flat names."""

from __future__ import annotations

from pydantic import BaseModel, Field

from omnicascade.config.providers import (
    PROVIDER_MODELS,
    FcmSettings,
    SendGridSettings,
    TelegramSettings,
    TwilioSettings,
    WebhookChannelSettings,
    WhatsAppSettings,
)


class ChannelSettings(BaseModel):
    # OMNICASCADE_<CHANNEL>_PROVIDER: every channel uses the outbox unless configured.
    email_provider: str = "outbox"
    sms_provider: str = "outbox"
    telegram_provider: str = "outbox"
    push_provider: str = "outbox"
    whatsapp_provider: str = "outbox"
    webhook_provider: str = "outbox"
    # OMNICASCADE_<CHANNEL>_RATE: messages per second the channel's provider allows across
    # all workers (its own task queue, channels/queues.py); 0 = none.
    email_rate: float = Field(default=0.0, ge=0)
    sms_rate: float = Field(default=0.0, ge=0)
    whatsapp_rate: float = Field(default=0.0, ge=0)
    telegram_rate: float = Field(default=0.0, ge=0)
    push_rate: float = Field(default=0.0, ge=0)
    webhook_rate: float = Field(default=0.0, ge=0)
    # Each provider's settings: OMNICASCADE_SENDGRID_API_KEY → sendgrid.api_key, …
    sendgrid: SendGridSettings = Field(default_factory=SendGridSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    twilio_whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    fcm: FcmSettings = Field(default_factory=FcmSettings)
    webhook_channel: WebhookChannelSettings = Field(default_factory=WebhookChannelSettings)

    def provider_for(self, channel: str) -> str:
        """The provider configured for a channel ("outbox" unless one is)."""
        return str(getattr(self, f"{channel}_provider")).strip().lower() or "outbox"

    def rate_of(self, channel: str) -> float:
        return float(getattr(self, f"{channel}_rate", 0.0))

    def provider_secrets(self) -> list[tuple[str, str]]:
        """(variable, value) of every provider secret that is set."""
        return [(model.env(name), value) for field in PROVIDER_MODELS
                for model in [getattr(self, field)] for name in model.secret_fields
                if (value := getattr(model, name)) is not None]
