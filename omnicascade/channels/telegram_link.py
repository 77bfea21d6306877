"""Binding a Telegram chat to a customer: a bot can only write to chats that started it.

`{{ telegram_link }}` in an email or SMS renders https://t.me/<bot>?start=<token>. The token
is opaque (random, no customer data), stored in `telegram_links`, reused for the customer
until it is used or expires, and binds exactly once: on `/start <token>` the webhook stores
the chat id as the customer's `telegram_chat_id`. No Telegram SDK here (the worker renders
links even when the telegram channel itself runs on the outbox).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from pydantic_settings import SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.channels.common import ProviderSettings
from omnicascade.db.models import Customer, TelegramLink, utcnow
from omnicascade.templates.render import RenderError


class TelegramSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="OMNICASCADE_TELEGRAM_", env_file=".env",
                                      extra="ignore")
    bot_token: str | None = None
    bot_username: str | None = None  # the bot's @username (with or without "@")
    # setWebhook(secret_token=…): Telegram sends it in X-Telegram-Bot-Api-Secret-Token
    webhook_secret: str | None = None
    api_base_url: str = "https://api.telegram.org/bot"  # a local Bot API server or a test
    timeout_s: float = 10.0
    rate: float = 30.0  # messages per second for the whole bot (Telegram's broadcast limit)
    burst: int = 1
    link_ttl_days: int = 30  # an unused /start token expires after this
    linked_reply: str = "You're connected. We'll send your updates here."
    invalid_link_reply: str = ("This link has expired or was already used. Open the latest "
                               "link we sent you to connect.")
    unknown_reply: str = "Hi! Open the link from our email or SMS to connect this chat."


def telegram_link(customer_id: str, *, session: Session,
                  config: TelegramSettings | None = None, now: datetime | None = None) -> str:
    config = config or TelegramSettings()
    bot = (config.bot_username or "").lstrip("@")
    if not bot:
        raise RenderError("telegram_link needs OMNICASCADE_TELEGRAM_BOT_USERNAME (the bot's "
                          "@username)")
    now = now or utcnow()
    row = session.scalar(select(TelegramLink).where(
        TelegramLink.customer_id == customer_id, TelegramLink.used_at.is_(None),
        TelegramLink.created_at >= now - timedelta(days=config.link_ttl_days / 2))
        .order_by(TelegramLink.created_at.desc()).limit(1))
    if row is None:  # reuse only young tokens, so a link sent today lives a full TTL
        row = TelegramLink(token=secrets.token_urlsafe(24), customer_id=customer_id,
                           created_at=now)
        session.add(row)
        session.flush()
    return f"https://t.me/{bot}?start={row.token}"


def link_for_templates(sources: dict[str, str], customer_id: str, *,
                       session: Session) -> str | None:
    """The customer's link when one of the template's parts uses it (else no token made)."""
    if not any("telegram_link" in src for src in sources.values()):
        return None
    return telegram_link(customer_id, session=session)


def bind_chat(token: str, chat_id: str, *, session: Session,
              config: TelegramSettings | None = None, now: datetime | None = None
              ) -> str | None:
    """Bind `chat_id` to the token's customer; the customer id, or None for a token that is
    unknown, used or expired (each token binds once)."""
    config = config or TelegramSettings()
    now = now or utcnow()
    row = session.get(TelegramLink, token, with_for_update=True)
    if row is None or row.used_at is not None or \
            row.created_at < now - timedelta(days=config.link_ttl_days):
        return None
    customer = session.get(Customer, row.customer_id)
    if customer is None:
        return None
    row.used_at, row.chat_id = now, chat_id
    customer.telegram_chat_id = chat_id
    customer.updated_at = now
    session.flush()
    return customer.id
