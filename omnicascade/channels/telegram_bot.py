"""Telegram through the Bot API (python-telegram-bot, natively async).

A bot may only write to a chat that started it, so customers are bound first: templates
put `{{ telegram_link }}` (https://t.me/<bot>?start=<one-time token>, see telegram_link.py)
in an email or SMS, and /webhooks/telegram binds the chat on `/start <token>`.
Sends are paced to Telegram's broadcast limit (≈30 msg/s by default).

Error classes (see channels/base.py):
- 403 (bot blocked, user deactivated) and "chat not found" → permanent, chat suppressed;
- a text Telegram can never accept (too long, empty) → permanent;
- 429 → retryable after Telegram's retry_after; other 4xx (bad token, validation) →
  retryable;
- 502/503/504 (Telegram's front end could not reach the Bot API) and no connection at all
  → retryable; 500, a read timeout or a dropped answer → ambiguous (Telegram has delivered
  messages it then answered with an error).
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.common import fit_into_activity, never_connected, own_copy
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.retry_after import bounded_delay
from omnicascade.channels.telegram_link import TelegramSettings
from omnicascade.config import Settings

_GONE = re.compile(r"chat not found|user not found|peer_id_invalid|bot was kicked", re.IGNORECASE)
_UNSENDABLE = re.compile(r"message is too long|text must be non-empty|message text is empty",
                         re.IGNORECASE)


class ServerError(NetworkError):
    """A 5xx answer from the Bot API, with its status code kept for classification."""

    def __init__(self, status: int, text: str):
        super().__init__(f"Telegram {status}: {text}")
        self.status = status


class _Request(HTTPXRequest):
    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        if status >= 500:
            raise ServerError(status, payload[:200].decode(errors="replace"))
        return status, payload


class TelegramChannel:
    provider = "telegram"

    def __init__(self, config: TelegramSettings, *, max_wait_s: float = 5.0):
        config.require("bot_token", "bot_username")
        self.config = config
        t = config.timeout_s
        self.bot = Bot(config.bot_token or "", base_url=config.api_base_url,
                       request=_Request(connection_pool_size=64, read_timeout=t,
                                        write_timeout=t, connect_timeout=t,
                                        pool_timeout=min(t, 2.0)))
        self.limiter = limiter(config.rate, config.burst, max_wait_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel:
        config = own_copy(settings.telegram)  # placeholders: refused by Settings
        if settings.env == "production":
            config.require("webhook_secret")
        return cls(config, max_wait_s=fit_into_activity(config, settings.send_timeout_s))

    async def send(self, message: Message) -> SendResult:
        if not message.body.strip():
            raise PermanentSendError("telegram message is empty")
        chat: int | str = int(message.to) if message.to.lstrip("-").isdigit() else message.to
        try:
            sent = await self.bot.send_message(chat_id=chat, text=message.body)
        except TelegramError as exc:
            raise classify(exc) from None
        return SendResult(provider=self.provider, message_id=f"{sent.chat_id}:{sent.message_id}")


def classify(exc: TelegramError) -> Exception:
    text = exc.message
    if isinstance(exc, Forbidden):
        return PermanentSendError(f"telegram: {text}", suppress=True)
    if isinstance(exc, RetryAfter):
        return RetryableSendError(f"telegram flood control: {text}",
                                  retry_after=bounded_delay(exc.retry_after))
    if isinstance(exc, BadRequest) and _GONE.search(text):
        return PermanentSendError(f"telegram: {text}", suppress=True)
    if isinstance(exc, BadRequest) and _UNSENDABLE.search(text):
        return PermanentSendError(f"telegram: {text}")
    if isinstance(exc, BadRequest):  # a NetworkError subclass, but a clear refusal
        return RetryableSendError(f"telegram 400: {text}")
    if isinstance(exc, ChatMigrated):
        return PermanentSendError(f"telegram: chat moved to {exc.new_chat_id}")
    if isinstance(exc, ServerError):
        if exc.status in (502, 503, 504):
            return RetryableSendError(text)
        return exc  # 500: it may have been delivered
    if isinstance(exc, (TimedOut, NetworkError)):
        if never_connected(exc):
            return RetryableSendError(f"telegram unreachable: {text}")
        return exc  # the request may have reached Telegram: ambiguous
    return RetryableSendError(f"telegram: {text}")  # 400/401/404/409: not accepted
