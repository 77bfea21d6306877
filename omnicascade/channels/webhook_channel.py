"""`channel: webhook`: each message POSTed as JSON to the shop's own receiver
(OMNICASCADE_WEBHOOK_CHANNEL_URL), which passes it on to any messenger we have no provider
for (a Viber bot, an in-app inbox, a CRM). Selected with OMNICASCADE_WEBHOOK_PROVIDER=http
(like every provider: a URL alone switches nothing on, so a rehearsal or a test `.env`
never starts sending). The receiver knows its customers: the address is the customer id.

Each request carries `X-Omnicascade-Signature` (the scheme of our own API, channels/
signing.py, keyed with OMNICASCADE_WEBHOOK_CHANNEL_SECRET) and `Idempotency-Key: <delivery
id>`, so the receiver can verify it and drop repeats. Answers are classified (base.py):
- 2xx → sent; the message id is the answer's `message_id`, else the delivery id;
- 408, 429 and 5xx → retryable, after `Retry-After` when given: the receiver did not take
  the message (or dedupes it by its Idempotency-Key);
- any other answer (4xx, a redirect) → permanent: the next channel at once;
- no connection at all → retryable; a timeout or a dropped answer after the request went
  out → ambiguous (`unknown`, never resent).
The receiver reports back through the signed `POST /v1/feedback` (webhook_feedback.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic_settings import SettingsConfigDict

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.common import (
    ProviderSettings,
    fit_into_activity,
    never_connected,
    retry_after_seconds,
)
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.signing import HEADER, sign
from omnicascade.config import Settings
from omnicascade.errors import ConfigError

RETRYABLE = frozenset({408, 425, 429})  # and every 5xx
USER_AGENT = "omnicascade-webhook/1"


class WebhookChannelSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="OMNICASCADE_WEBHOOK_CHANNEL_",
                                      env_file=".env", extra="ignore")
    url: str | None = None     # the receiver, e.g. https://shop.example/omnicascade/messages
    secret: str | None = None  # signs our requests; also accepted on POST /v1/feedback
    timeout_s: float = 10.0
    rate: float = 0.0          # msg/s paced by this worker; 0 = no pacing (429 honoured)
    burst: int = 10


class NoAnswer(Exception):
    """The request went out and no answer came back: the receiver may have the message."""


def payload(message: Message) -> dict[str, Any]:
    """What the receiver gets (docs/channels.md, *Webhook channel*): always the same keys."""
    return {"delivery_id": message.delivery_id, "customer_id": message.customer_id,
            "campaign": message.campaign, "run_id": message.run_id, "step": message.step,
            "channel": message.channel, "body": message.body, "subject": message.subject,
            "title": message.title, "data": message.data,
            "unsubscribe_url": message.unsubscribe_url}


def _excerpt(response: httpx.Response) -> str:
    """A short reason from the receiver's answer: its `error`/`detail`/`message`, or text."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for key in ("error", "detail", "message"):
            if answer.get(key):
                return str(answer[key])[:200]
    return response.text[:200].strip()


def classify(response: httpx.Response, delivery_id: str) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        given = answer.get("message_id") if isinstance(answer, dict) else None
        return SendResult(provider=WebhookChannel.provider,
                          message_id=str(given)[:255] if given not in (None, "")
                          else delivery_id)
    reason = f"webhook receiver answered {status}"
    if text := _excerpt(response):
        reason += f": {text}"
    if status in RETRYABLE or status >= 500:
        raise RetryableSendError(reason, retry_after=retry_after_seconds(response.headers))
    if 300 <= status < 400:
        reason += " (redirects are not followed: set OMNICASCADE_WEBHOOK_CHANNEL_URL to " \
                  "the final URL)"
    raise PermanentSendError(reason)


class WebhookChannel:
    provider = "http"

    def __init__(self, config: WebhookChannelSettings, *, max_wait_s: float = 5.0):
        config.require("url", "secret")
        parts = urlsplit(str(config.url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"OMNICASCADE_WEBHOOK_CHANNEL_URL={config.url!r} is not an "
                              f"http(s) URL (e.g. https://shop.example/omnicascade/messages)")
        self.config = config
        self.url = httpx.URL(str(config.url))
        self.path = self.url.raw_path.decode("ascii")  # what is signed: path + ?query
        self.limiter = limiter(config.rate, config.burst, max_wait_s)
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_env(cls, settings: Settings) -> WebhookChannel:
        config = WebhookChannelSettings()
        config.refuse_placeholders(settings.env == "production", "secret")
        return cls(config, max_wait_s=fit_into_activity(config, settings.send_timeout_s))

    def _client(self) -> httpx.AsyncClient:
        """One connection pool per event loop (the worker has one; tests make many)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            timeout = self.config.timeout_s
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(
                timeout, connect=min(timeout, 5.0)), follow_redirects=False)
            self._loop = loop
        return self._http

    def request(self, message: Message, timestamp: int | None = None
                ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers of one message's request."""
        body = json.dumps(payload(message), ensure_ascii=False,
                          separators=(",", ":")).encode()
        assert self.config.secret  # required in __init__
        return body, {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                      "Idempotency-Key": message.delivery_id,
                      HEADER: sign(self.config.secret, "POST", self.path, body, timestamp)}

    async def send(self, message: Message) -> SendResult:
        body, headers = self.request(message)
        try:
            response = await self._client().post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            if never_connected(exc):
                raise RetryableSendError(f"webhook receiver unreachable: "
                                         f"{type(exc).__name__}: {exc}") from None
            raise NoAnswer(f"no answer from the webhook receiver ({type(exc).__name__}); "
                           f"it may have the message") from exc
        return classify(response, message.delivery_id)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
