"""Email through SendGrid's v3 Mail Send API (the official `sendgrid` SDK).

Every message carries the opaque delivery id in `custom_args` (SendGrid echoes it in each
Event Webhook event, parsed by `SendGridWebhook` below) and RFC 8058 one-click unsubscribe
headers.

Error classes (see channels/base.py):
- 202 → sent, message id from X-Message-Id;
- 400 naming the recipient address → permanent (the address can never be used);
- other 4xx (auth, validation, payload), 429 (Retry-After / X-RateLimit-Reset honoured) and
  5xx → retryable: SendGrid documents that a non-2xx answer means the message was not
  queued, so a retry cannot duplicate it;
- the request never completed (urllib's URLError: refused, DNS, reset while sending) →
  retryable; anything after the request went out (read timeout, dropped answer) → ambiguous.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sendgrid.helpers.mail import Category, CustomArg, From, Header, Mail, ReplyTo, To

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.callbacks import (
    Feedback,
    FeedbackOutcome,
    WebhookRefused,
    WebhookReply,
    WebhookRequest,
    content_id,
    from_unix,
)
from omnicascade.channels.common import fit_into_activity, own_copy
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.retry_after import bounded_delay, retry_after_seconds
from omnicascade.config import Settings
from omnicascade.config.providers import SendGridSettings
from omnicascade.vocabulary import MACHINE_OPEN

__all__ = ["SendGridChannel", "SendGridSettings", "SendGridWebhook"]
DELIVERY_ARG = "omnicascade_delivery_id"  # custom_args key; the value is opaque, never PII
_BOUNCE_DROP = re.compile(r"bounce|unsubscrib|spam|invalid", re.IGNORECASE)


class SendGridChannel:
    provider = "sendgrid"

    def __init__(self, config: SendGridSettings, *, max_wait_s: float = 5.0):
        config.require("api_key", "from_email")
        self.config = config
        self.client = SendGridAPIClient(config.api_key, host=config.host)
        self.limiter = limiter(config.rate, config.burst, max_wait_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridChannel:
        config = own_copy(settings.sendgrid)  # placeholders: refused by Settings
        return cls(config, max_wait_s=fit_into_activity(config, settings.send_timeout_s))

    def build(self, message: Message) -> dict[str, Any]:
        if not message.subject:
            raise PermanentSendError("email has no subject (add <template>.subject.j2)")
        mail = Mail(from_email=From(self.config.from_email, self.config.from_name),
                    to_emails=To(message.to), subject=message.subject,
                    plain_text_content=message.body or None,
                    html_content=message.html or None)
        if self.config.reply_to:
            mail.reply_to = ReplyTo(self.config.reply_to)
        mail.custom_arg = CustomArg(DELIVERY_ARG, message.delivery_id)
        mail.category = Category(message.campaign)  # SendGrid's stats per campaign
        if message.unsubscribe_url:  # RFC 8058: Gmail/Yahoo show "Unsubscribe" and POST it
            mail.header = [Header("List-Unsubscribe", f"<{message.unsubscribe_url}>"),
                           Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
        return mail.get()

    async def send(self, message: Message) -> SendResult:
        body = self.build(message)
        if self.limiter:
            await self.limiter.acquire(message.delivery_id)
        response = await asyncio.to_thread(self._post, body)
        headers = {k.lower(): v for k, v in dict(response.headers or {}).items()}
        return SendResult(provider=self.provider, message_id=headers.get("x-message-id"))

    def _post(self, body: dict[str, Any]) -> Any:
        try:
            return self.client.client.mail.send.post(request_body=body,
                                                     timeout=self.config.timeout_s)
        except HTTPError as exc:
            raise classify(exc) from None
        except urllib.error.URLError as exc:
            # urllib raises URLError only while connecting or writing the request: SendGrid
            # cannot have accepted a request it never fully received.
            raise RetryableSendError(f"SendGrid unreachable: {exc.reason}") from None


def _errors(exc: HTTPError) -> list[dict[str, Any]]:
    try:
        data = json.loads(exc.body.decode() if isinstance(exc.body, bytes) else exc.body)
        return list(data.get("errors") or [])
    except (ValueError, AttributeError, TypeError):
        return []


def classify(exc: HTTPError) -> Exception:
    status = int(exc.status_code)
    errors = _errors(exc)
    text = "; ".join(str(e.get("message")) for e in errors) or str(exc.reason)
    if status == 429:
        headers = dict(exc.headers or {})
        wait = retry_after_seconds(headers)
        reset = {k.lower(): v for k, v in headers.items()}.get("x-ratelimit-reset")
        if wait is None and reset and str(reset).isdigit():
            wait = bounded_delay(max(0.0, int(reset) - time.time()))
        return RetryableSendError(f"SendGrid 429: {text}", retry_after=wait)
    if status == 400 and any(".to." in f"{e.get('field', '')}." for e in errors):
        return PermanentSendError(f"invalid address: {text}")
    return RetryableSendError(f"SendGrid {status}: {text}")


# ---- the Event Webhook ---------------------------------------------------------------------

def event_item(ev: dict[str, Any]) -> Feedback:
    """One Event Webhook event → Feedback: bounces and drops fail the step (and suppress a
    dead address), spam reports and unsubscribes suppress the address everywhere, and an
    open SendGrid flags `sg_machine_open` (Apple Mail Privacy Protection fetched the pixel,
    no person opened it) is recorded as `machine_open`."""
    name = str(ev.get("event") or "unknown")[:32]
    if name == "open" and ev.get("sg_machine_open") in (True, "true", "True", 1):
        name = MACHINE_OPEN
    address = ev.get("email") if isinstance(ev.get("email"), str) else None
    sg_id = ev.get("sg_event_id")
    item = Feedback("sendgrid", name, f"sendgrid:{sg_id}"[:255] if sg_id else
                    content_id("sendgrid", ev),
                    delivery_id=str(ev[DELIVERY_ARG])[:160] if ev.get(DELIVERY_ARG) else None,
                    occurred_at=from_unix(ev.get("timestamp")), data=ev)
    reason = str(ev.get("reason") or ev.get("response") or "")[:200]
    if name == "bounce" and ev.get("type") == "blocked":  # refused for now, not a dead address
        item.fail = f"blocked: {reason}".strip(": ")
    elif name == "bounce":
        item.suppress, item.fail = ("email", address, "bounced"), f"bounced: {reason}".strip(": ")
    elif name == "dropped":
        item.fail = f"dropped: {reason}".strip(": ")
        if _BOUNCE_DROP.search(reason):  # SendGrid's own suppression list: mirror it
            item.suppress = ("email", address, f"dropped: {reason}")
    elif name == "spamreport":
        item.suppress = ("email", address, "spamreport")
    elif name in ("unsubscribe", "group_unsubscribe"):
        item.suppress = ("email", address, "unsubscribed")
    return item


class SendGridWebhook:
    """Signed Event Webhook: ECDSA P-256 over timestamp + raw body."""
    name = "sendgrid"

    def __init__(self, config: SendGridSettings):
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridWebhook:
        return cls(settings.sendgrid)

    def parse(self, request: WebhookRequest) -> list[Feedback]:
        signature, timestamp = request.signature(
            EventWebhookHeader.SIGNATURE, EventWebhookHeader.TIMESTAMP,
            key=self.config.webhook_public_key,
            key_setting="OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY")
        try:
            valid = EventWebhook(self.config.webhook_public_key).verify_signature(
                request.body.decode(), signature, timestamp)
        except Exception:  # malformed signature, key or body: not verified
            valid = False
        if not valid:
            raise WebhookRefused(403, "SendGrid signature does not match")
        try:
            events = json.loads(request.body)
        except (ValueError, RecursionError):
            raise WebhookRefused(400, "body is not JSON") from None
        if not isinstance(events, list):
            raise WebhookRefused(400, "expected a JSON array of event objects")
        # One event SendGrid cannot have meant is rejected alone (see cascade/feedback.py);
        # refusing the batch would make SendGrid resend every valid event in it for a day.
        return [event_item(e) if isinstance(e, dict) else
                Feedback("sendgrid", "event", content_id("sendgrid", e),
                         reject="event is not a JSON object") for e in events]

    def reply(self, items: list[Feedback], outcome: FeedbackOutcome) -> WebhookReply:
        return WebhookReply({"recorded": outcome.recorded, "duplicates": outcome.duplicates,
                             "rejected": outcome.rejected,
                             "steps_failed": len(outcome.failed_steps),
                             "signalled": outcome.signalled})
