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
The whole exchange has one deadline (`timeout_s`, not per read), and at most ANSWER_CAP bytes
of the answer are read: the status decides, the body only names a message id or a reason.
Once the status line is in, the status counts even if the body is cut short (over the cap,
past the deadline, dropped): the rest is ignored with a WARNING. A deadline before any
status is ambiguous as above — or retryable if the request had not started going out.
The receiver reports back through the signed `POST /v1/feedback` (receiver_reports.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.common import (
    fit_into_activity,
    never_connected,
    own_copy,
)
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.retry_after import retry_after_seconds
from omnicascade.channels.signing import HEADER, sign
from omnicascade.config import Settings
from omnicascade.config.providers import WebhookChannelSettings
from omnicascade.errors import ConfigError

RETRYABLE = frozenset({408, 425, 429})  # and every 5xx
USER_AGENT = "omnicascade-webhook/1"
ANSWER_CAP = 64 * 1024  # bytes of the receiver's answer we read; a message id fits easily
log = logging.getLogger("omnicascade.channels.webhook")


class NoAnswer(Exception):
    """The request went out and no answer came back: the receiver may have the message."""


def payload(message: Message) -> dict[str, Any]:
    """What the receiver gets (docs/channels.md, *Webhook channel*): always the same keys."""
    return {"delivery_id": message.delivery_id, "customer_id": message.customer_id,
            "campaign": message.campaign, "run_id": message.run_id, "step": message.step,
            "channel": message.channel, "body": message.body, "subject": message.subject,
            "title": message.title, "data": message.data,
            "unsubscribe_url": message.unsubscribe_url}


class Answer:
    """What we keep of the receiver's answer: the status, the headers, the first bytes."""

    def __init__(self, status: int, headers: httpx.Headers, body: bytes):
        self.status_code, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:  # also a body cut off at the cap, or not UTF-8
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _excerpt(answer: Answer) -> str:
    """A short reason from the receiver's answer: its `error`/`detail`/`message`, or text."""
    data = answer.json()
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            if data.get(key):
                return str(data[key])[:200]
    return answer.text[:200].strip()


def classify(answer: Answer, delivery_id: str) -> SendResult:
    status = answer.status_code
    if 200 <= status < 300:
        data = answer.json()
        given = data.get("message_id") if isinstance(data, dict) else None
        return SendResult(provider=WebhookChannel.provider,
                          message_id=str(given)[:255] if given not in (None, "")
                          else delivery_id)
    reason = f"webhook receiver answered {status}"
    if text := _excerpt(answer):
        reason += f": {text}"
    if status in RETRYABLE or status >= 500:
        raise RetryableSendError(reason, retry_after=retry_after_seconds(answer.headers))
    if 300 <= status < 400:
        reason += " (redirects are not followed: set OMNICASCADE_WEBHOOK_CHANNEL_URL to " \
                  "the final URL)"
    raise PermanentSendError(reason)


class _Exchange:
    """How far one request got: httpcore's trace says when the request started going out;
    the status is known once the answer's headers are in. Then up to ANSWER_CAP bytes."""

    def __init__(self) -> None:
        self.sending = False
        self.status: int | None = None
        self.headers = httpx.Headers()
        self.body = bytearray()
        self.cut: str | None = None  # why the body was not read to its end

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_headers.started"):
            self.sending = True

    async def read(self, response: httpx.Response) -> None:
        self.status, self.headers = response.status_code, response.headers
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            self.cut = "encoded"  # we asked for identity: no inflating a stranger's bytes
            return
        async for chunk in response.aiter_raw():
            self.body += chunk[:ANSWER_CAP - len(self.body)]
            if len(self.body) >= ANSWER_CAP:
                self.cut = f"over {ANSWER_CAP // 1024} KB"
                return  # leaving the stream closes the connection: the rest is never read


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
    def from_settings(cls, settings: Settings) -> WebhookChannel:
        config = own_copy(settings.webhook_channel)  # placeholders: refused by Settings
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
                      "Accept-Encoding": "identity", "Idempotency-Key": message.delivery_id,
                      HEADER: sign(self.config.secret, "POST", self.path, body, timestamp)}

    async def send(self, message: Message) -> SendResult:
        body, headers = self.request(message)
        ex = _Exchange()
        try:
            async with asyncio.timeout(self.config.timeout_s):  # the whole exchange
                async with self._client().stream(
                        "POST", self.url, content=body, headers=headers,
                        extensions={"trace": ex.trace}) as response:
                    await ex.read(response)
        except (httpx.HTTPError, TimeoutError) as exc:
            if ex.status is None:
                raise self._no_answer(exc, ex) from exc
            ex.cut = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        if ex.cut:  # ids and numbers only: the answer itself may name the customer
            log.warning("webhook answer not read to its end (%s): status=%s delivery=%s; "
                        "the status counts, the rest is ignored", ex.cut, ex.status,
                        message.delivery_id)
        assert ex.status is not None
        return classify(Answer(ex.status, ex.headers, bytes(ex.body)), message.delivery_id)

    def _no_answer(self, exc: Exception, ex: _Exchange) -> Exception:
        """No status: retryable if the request never started going out, else ambiguous."""
        why = f"within the {self.config.timeout_s:g}s deadline" \
            if isinstance(exc, TimeoutError) else f"({type(exc).__name__})"
        if never_connected(exc) or not ex.sending:
            return RetryableSendError(f"webhook receiver unreachable: {why} {exc}".strip())
        return NoAnswer(f"no answer from the webhook receiver {why}; it may have the message")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
