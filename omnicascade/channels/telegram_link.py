"""Binding a Telegram chat to a customer, and the bot's updates: a bot can only write to
chats that started it.

`{{ telegram_link }}` in an email or SMS renders https://t.me/<bot>?start=<token>. The token
is opaque (random, no customer data), stored in `telegram_links`, reused for the customer
until it is used or expires, and binds exactly once: on `/start <token>` the webhook stores
the chat id as the customer's `telegram_chat_id`. No Telegram SDK here (the worker renders
links even when the telegram channel itself runs on the outbox). `TelegramWebhook` reads the
updates Telegram posts to /webhooks/telegram (verified by the secret token given to
setWebhook): /start binds, /stop and blocking the bot suppress, unblocking lifts.
"""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.templates.render import RenderError
from omnicascade.channels.callbacks import (
    Bind,
    Feedback,
    FeedbackOutcome,
    WebhookRefused,
    WebhookReply,
    WebhookRequest,
    content_id,
)
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.config.providers import TelegramSettings
from omnicascade.db.models import Customer, TelegramLink


def telegram_link(customer_id: str, config: TelegramSettings, *, session: Session,
                  now: datetime | None = None) -> str:
    bot = (config.bot_username or "").lstrip("@")
    if not bot:
        raise RenderError("telegram_link needs OMNICASCADE_TELEGRAM_BOT_USERNAME (the bot's "
                          "@username)")
    now = now or now_utc()
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


def uses_telegram_link(sources: dict[str, str]) -> bool:
    return any("telegram_link" in src for src in sources.values())


def link_for_templates(sources: dict[str, str], customer_id: str, config: TelegramSettings,
                       *, session: Session) -> str | None:
    """The customer's link when one of the template's parts uses it (else no token made)."""
    if not uses_telegram_link(sources):
        return None
    return telegram_link(customer_id, config, session=session)


def bind_chat(token: str, chat_id: str, *, session: Session, max_age_days: int = 30,
              now: datetime | None = None) -> str | None:
    """Bind `chat_id` to the token's customer; the customer id, or None for a token that is
    unknown, used or expired (each token binds once)."""
    now = now or now_utc()
    row = session.get(TelegramLink, token, with_for_update=True)
    if row is None or row.used_at is not None or \
            row.created_at < now - timedelta(days=max_age_days):
        return None
    customer = session.get(Customer, row.customer_id)
    if customer is None:
        return None
    row.used_at, row.chat_id = now, chat_id
    customer.telegram_chat_id = chat_id
    customer.updated_at = now
    session.flush()
    return customer.id


def _malformed(update: dict[str, Any]) -> str | None:
    """What is not shaped like Telegram's Update object (only the parts read here)."""
    for key in ("message", "my_chat_member"):
        part = update.get(key)
        if part is None:
            continue
        if not isinstance(part, dict):
            return f"{key} is not an object"
        for sub in ("chat", "new_chat_member"):
            if part.get(sub) is not None and not isinstance(part.get(sub), dict):
                return f"{key}.{sub} is not an object"
        chat_id = (part.get("chat") or {}).get("id")
        if chat_id is not None and (isinstance(chat_id, bool)
                                    or not isinstance(chat_id, (int, str))):
            return f"{key}.chat.id is not a number"
    return None


def update_item(update: dict[str, Any], config: TelegramSettings) -> Feedback:
    item = Feedback("telegram", "update", f"telegram:{config.bot_username or 'bot'}:"
                    f"{update.get('update_id')}"[:255] if "update_id" in update else
                    content_id("telegram", update), data={"chat_id": ""})
    item.reject = _malformed(update)
    if item.reject:  # answered 200 and recorded as rejected: Telegram resends a non-2xx
        return item
    message = update.get("message") or {}
    member = update.get("my_chat_member") or {}
    chat = str((message.get("chat") or member.get("chat") or {}).get("id") or "")[:64]
    item.data = {"chat_id": chat}
    text = str(message.get("text") or "").strip()
    command, _, arg = text.partition(" ")
    command = command.split("@")[0].lower()
    status = (member.get("new_chat_member") or {}).get("status")
    if chat and status == "kicked":  # the person blocked the bot
        item.event, item.suppress = "blocked", ("telegram", chat, "blocked")
    elif chat and status == "member" and member:
        item.event, item.lift = "unblocked", ("telegram", chat, ("blocked",))
    elif chat and command == "/stop":
        item.event, item.suppress = "stop", ("telegram", chat, "stop")
    elif chat and command == "/start":
        item.event = "start"
        if arg.strip():  # a new /start <token> is consent again: lift earlier opt-outs
            item.bind = Bind(arg.strip(), chat, config.link_ttl_days)
            item.lift = ("telegram", chat, ("blocked", "stop", "unsubscribed"))
    return item


class TelegramWebhook:
    name = "telegram"

    def __init__(self, config: TelegramSettings):
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramWebhook:
        return cls(settings.telegram)

    def parse(self, request: WebhookRequest) -> list[Feedback]:
        [given] = request.signature("X-Telegram-Bot-Api-Secret-Token",
                                    key=self.config.webhook_secret,
                                    key_setting="OMNICASCADE_TELEGRAM_WEBHOOK_SECRET")
        assert self.config.webhook_secret is not None  # checked by request.signature
        if not hmac.compare_digest(given.encode(), self.config.webhook_secret.encode()):
            raise WebhookRefused(403, "Telegram secret token does not match")
        try:
            update = json.loads(request.body)
        except (ValueError, RecursionError):
            raise WebhookRefused(400, "body is not JSON") from None
        if not isinstance(update, dict):
            raise WebhookRefused(400, "expected a Telegram Update object")
        return [update_item(update, self.config)]

    def reply(self, items: list[Feedback], outcome: FeedbackOutcome) -> WebhookReply:
        """Answered inline: Telegram performs the sendMessage method for us."""
        [item] = items
        chat = (item.data or {}).get("chat_id") or ""
        text = None
        if item.provider_event_id in outcome.new and item.event == "start":
            if item.bind is None:
                text = self.config.unknown_reply
            elif outcome.bound.get(item.provider_event_id) is None:
                text = self.config.invalid_link_reply
            else:
                text = self.config.linked_reply
        if not text or not chat:
            return WebhookReply({"ok": True})
        return WebhookReply({"method": "sendMessage",
                             "chat_id": int(chat) if chat.lstrip("-").isdigit() else chat,
                             "text": text})
