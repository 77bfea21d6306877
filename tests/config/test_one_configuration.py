"""One configuration (issue 26): Settings alone reads the environment and .env; providers
get their settings from it; every secret is refused as a placeholder in production; an
unknown OMNICASCADE_* variable is named at start with the closest real one."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omnicascade.channels.registry import build_webhook
from omnicascade.config import Settings, load_settings
from omnicascade.config.providers import TelegramSettings, TwilioSettings
from omnicascade.config.sources import unknown, variables, warn_unknown
from omnicascade.errors import ConfigError

REAL = "r" * 40


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No OMNICASCADE_* variable of the test run's, no developer's .env."""
    import os
    for name in list(os.environ):
        if name.startswith("OMNICASCADE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_provider_variable_keeps_its_flat_name(env: pytest.MonkeyPatch) -> None:
    for name, value in {"SENDGRID_API_KEY": "SG.key", "SENDGRID_WEBHOOK_PUBLIC_KEY": "pk",
                        "TWILIO_AUTH_TOKEN": "tok", "TWILIO_WHATSAPP_FROM_NUMBER": "+1555",
                        "TELEGRAM_WEBHOOK_SECRET": "tg", "TELEGRAM_RATE": "7",
                        "FCM_PROJECT_ID": "shop", "WEBHOOK_CHANNEL_SECRET": "wh",
                        "SMS_RATE": "5", "EMAIL_PROVIDER": "SendGrid"}.items():
        env.setenv(f"OMNICASCADE_{name}", value)
    s = Settings()
    assert (s.sendgrid.api_key, s.sendgrid.webhook_public_key) == ("SG.key", "pk")
    assert s.twilio.auth_token == "tok" and s.twilio_whatsapp.from_number == "+1555"
    assert s.twilio.from_number is None  # …_WHATSAPP_FROM_NUMBER is not the SMS sender
    assert (s.telegram.webhook_secret, s.telegram.rate, s.telegram_rate) == ("tg", 7, 7)
    assert s.fcm.project_id == "shop" and s.webhook_channel.secret == "wh"
    assert s.rate_of("sms") == 5 and s.provider_for("email") == "sendgrid"


def test_the_same_variables_from_dotenv(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OMNICASCADE_TWILIO_AUTH_TOKEN=from-dotenv\n"
                                   "OMNICASCADE_SMS_RATE=2\n")
    s = Settings()
    assert s.twilio.auth_token == "from-dotenv" and s.sms_rate == 2


def test_a_webhook_gets_its_secret_from_the_settings_it_is_given(
        env: pytest.MonkeyPatch) -> None:
    """`from_env(settings)` used to ignore its argument and read the environment itself."""
    s = Settings(telegram=TelegramSettings(webhook_secret="given-to-settings"),
                 twilio=TwilioSettings(auth_token="twilio-given"))
    assert build_webhook("telegram", s).config.webhook_secret == "given-to-settings"
    assert build_webhook("twilio", s).config.auth_token == "twilio-given"


@pytest.mark.parametrize("variable", [
    "OMNICASCADE_TWILIO_AUTH_TOKEN", "OMNICASCADE_TWILIO_API_SECRET",
    "OMNICASCADE_TELEGRAM_BOT_TOKEN", "OMNICASCADE_TELEGRAM_WEBHOOK_SECRET",
    "OMNICASCADE_WEBHOOK_CHANNEL_SECRET", "OMNICASCADE_SENDGRID_API_KEY"])
def test_production_refuses_every_provider_secret_that_is_a_placeholder(
        env: pytest.MonkeyPatch, variable: str) -> None:
    """Even when the provider is not selected: its webhook still verifies with the secret."""
    env.setenv("OMNICASCADE_ENV", "production")
    env.setenv("OMNICASCADE_WEBHOOK_SECRET", REAL)
    env.setenv(variable, "changeme")
    with pytest.raises(ConfigError, match=f"{variable} looks like a placeholder"):
        load_settings()
    env.setenv(variable, "short-but-real")  # under 16 characters
    with pytest.raises(ConfigError, match=variable):
        load_settings()
    env.setenv(variable, REAL)
    assert load_settings().env == "production"
    env.setenv("OMNICASCADE_ENV", "development")
    env.setenv(variable, "changeme")
    assert load_settings().env == "development"  # development: a test value is fine


def test_a_public_key_is_no_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("OMNICASCADE_ENV", "production")
    env.setenv("OMNICASCADE_WEBHOOK_SECRET", REAL)
    env.setenv("OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY", "short")
    assert load_settings().sendgrid.webhook_public_key == "short"


def test_a_refused_setting_does_not_echo_the_secrets(env: pytest.MonkeyPatch) -> None:
    env.setenv("OMNICASCADE_ENV", "production")
    env.setenv("OMNICASCADE_WEBHOOK_SECRET", "the-real-webhook-secret-123")
    env.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", "changeme")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "the-real-webhook-secret-123" not in str(err.value)


def test_a_misspelt_variable_is_named_with_the_closest_real_one(
        env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env.setenv("OMNICASCADE_SMS_RAET", "5")
    env.setenv("OMNICASCADE_SMS_RATE", "1")  # a known one: no warning
    (tmp_path / ".env").write_text("OMNICASCADE_SENDGRID_APIKEY=SG.x\nOTHER_THING=1\n"
                                   "OMNICASCADE_ZZZZZZ=1\n")
    with caplog.at_level(logging.WARNING, logger="omnicascade.config"):
        found = warn_unknown()
    assert found == {"OMNICASCADE_SMS_RAET": "OMNICASCADE_SMS_RATE",
                     "OMNICASCADE_SENDGRID_APIKEY": "OMNICASCADE_SENDGRID_API_KEY",
                     "OMNICASCADE_ZZZZZZ": None}
    text = caplog.text
    assert "OMNICASCADE_SMS_RAET is not a setting" in text
    assert "did you mean OMNICASCADE_SMS_RATE?" in text
    assert "did you mean OMNICASCADE_SENDGRID_API_KEY?" in text
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert "SG.x" not in text  # names only: a value may be a secret


def test_the_test_suites_own_variables_are_not_reported(env: pytest.MonkeyPatch) -> None:
    env.setenv("OMNICASCADE_TEST_POSTGRES_URL", "postgresql://x")
    assert unknown() == {}


def test_every_setting_has_one_variable_and_every_provider_field_is_named() -> None:
    names = variables()
    assert names["OMNICASCADE_SENDGRID_API_KEY"] == "sendgrid.api_key"
    assert names["OMNICASCADE_TWILIO_WHATSAPP_FROM_NUMBER"] == "twilio_whatsapp.from_number"
    assert names["OMNICASCADE_TELEGRAM_RATE"] == "telegram_rate, telegram.rate"
    assert names["OMNICASCADE_SMS_RATE"] == "sms_rate"
    assert "OMNICASCADE_SENDGRID" not in names  # the models are no variables of their own
