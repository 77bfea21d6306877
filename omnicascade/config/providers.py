"""Each provider's settings: plain models nested in Settings (config/channels.py), which alone
reads the environment and .env. The variable names are flat, `OMNICASCADE_<PROVIDER>_<FIELD>`
(deployments use them): Settings maps them onto these models, one model per provider."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from omnicascade.errors import ConfigError


class ProviderSettings(BaseModel):
    """Base for per-provider settings; `env_prefix` names their variables."""

    # extra: OMNICASCADE_TWILIO_WHATSAPP_* also starts with the Twilio account's prefix.
    model_config = ConfigDict(extra="ignore")
    env_prefix: ClassVar[str] = "OMNICASCADE_"
    # Fields holding a secret: masked by `config check`, refused as placeholders in
    # production when set (a provider that needs one says so with `require`).
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise ConfigError(f"{self.env(missing[0])} must be set to use this provider "
                              f"(missing: {', '.join(self.env(n) for n in missing)})")

    @classmethod
    def env(cls, name: str) -> str:
        return f"{cls.env_prefix}{name}".upper()


class SendGridSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_SENDGRID_"
    # webhook_public_key is public (it only verifies SendGrid's signatures): not a secret.
    secret_fields = ("api_key",)
    api_key: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    host: str = "https://api.sendgrid.com"  # EU data residency: https://api.eu.sendgrid.com
    # Event Webhook verification key (Settings → Mail Settings → Signed Event Webhook), the
    # base64 text SendGrid shows; without it /webhooks/sendgrid refuses every request.
    webhook_public_key: str | None = None
    timeout_s: float = 15.0
    rate: float = 0.0  # msg/s paced by this worker; 0 = let SendGrid answer 429
    burst: int = 10


class TwilioSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_TWILIO_"
    secret_fields = ("auth_token", "api_secret")
    account_sid: str | None = None
    auth_token: str | None = None  # also verifies X-Twilio-Signature on webhooks
    api_key: str | None = None  # optional API key SID + secret instead of the auth token
    api_secret: str | None = None
    messaging_service_sid: str | None = None  # preferred: Twilio picks the sender
    from_number: str | None = None
    # Where Twilio reports message status; default: OMNICASCADE_PUBLIC_URL + /webhooks/twilio
    status_callback_url: str | None = None
    api_base_url: str | None = None  # only to point the SDK at a proxy or a test server
    timeout_s: float = 15.0
    rate: float = 1.0  # messages per second this sender may send (long code: 1 MPS)
    burst: int = 1


class WhatsAppSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_TWILIO_WHATSAPP_"
    messaging_service_sid: str | None = None  # a messaging service with a WhatsApp sender
    from_number: str | None = None            # the WhatsApp-enabled number, +E.164
    rate: float = 80.0  # messages per second (WhatsApp senders: 80 MPS by default)
    burst: int = 10


class TelegramSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_TELEGRAM_"
    secret_fields = ("bot_token", "webhook_secret")
    bot_token: str | None = None
    bot_username: str | None = None  # the bot's @username (with or without "@")
    # setWebhook(secret_token=…): Telegram sends it in X-Telegram-Bot-Api-Secret-Token
    webhook_secret: str | None = None
    api_base_url: str = "https://api.telegram.org/bot"  # a local Bot API server or a test
    timeout_s: float = 10.0
    # Also the channel's rate across workers (Settings.telegram_rate reads the same variable)
    rate: float = 30.0  # messages per second for the whole bot (Telegram's broadcast limit)
    burst: int = 1
    link_ttl_days: int = 30  # an unused /start token expires after this
    linked_reply: str = "You're connected. We'll send your updates here."
    invalid_link_reply: str = ("This link has expired or was already used. Open the latest "
                               "link we sent you to connect.")
    unknown_reply: str = "Hi! Open the link from our email or SMS to connect this chat."


class FcmSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_FCM_"
    # credentials_file is a path, not the secret itself (the file's permissions guard it).
    project_id: str | None = None
    # A service-account JSON file; unset → Application Default Credentials
    # (GOOGLE_APPLICATION_CREDENTIALS, or the workload identity of the machine).
    credentials_file: str | None = None
    # Only for an emulator or a test server: FCM's base URL (default https://fcm.googleapis.com)
    endpoint: str | None = None
    default_link: str | None = None  # data.link when the message body carries no URL
    timeout_s: float = 15.0
    rate: float = 0.0  # msg/s paced by this worker; 0 = let FCM answer 429
    burst: int = 10


class WebhookChannelSettings(ProviderSettings):
    env_prefix = "OMNICASCADE_WEBHOOK_CHANNEL_"
    secret_fields = ("secret",)
    url: str | None = None     # the receiver, e.g. https://shop.example/omnicascade/messages
    secret: str | None = None  # signs our requests; also accepted on POST /v1/feedback
    timeout_s: float = 10.0
    rate: float = 0.0          # msg/s paced by this worker; 0 = no pacing (429 honoured)
    burst: int = 10


# Settings field → the provider's model (its variables: OMNICASCADE_<FIELD>_<NAME>).
PROVIDER_MODELS: dict[str, type[ProviderSettings]] = {
    "sendgrid": SendGridSettings, "twilio": TwilioSettings,
    "twilio_whatsapp": WhatsAppSettings, "telegram": TelegramSettings,
    "fcm": FcmSettings, "webhook_channel": WebhookChannelSettings,
}
