"""SMS through Twilio's Messages API (the official `twilio` SDK).

The number is checked as E.164 (phonenumbers) before any request. Each message asks Twilio
to report its status to /webhooks/twilio?delivery=<opaque delivery id>, and the segment
count Twilio bills is stored in the ledger. Sends are paced per sender (`rate`, MPS).

Error classes (see channels/base.py):
- a number Twilio says is invalid / not mobile / opted out (21211, 21614, 21610) →
  permanent and suppressed; unreachable / region not enabled (21612, 21408) → permanent;
- other 4xx, 429 and 5xx → retryable: Twilio creates no Message resource for a non-2xx
  answer, so a retry cannot send twice; a 429's Retry-After sets the next attempt's delay
  (the SDK's exception drops the headers, so the HTTP client keeps them per thread);
- the request never reached Twilio (refused, DNS, connect timeout) → retryable; a read
  timeout or a dropped answer → ambiguous.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.common import (
    fit_into_activity,
    never_connected,
    own_copy,
)
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.retry_after import retry_after_seconds
from omnicascade.config import Settings
from omnicascade.config.providers import TwilioSettings
from omnicascade.errors import ConfigError

# https://www.twilio.com/docs/api/errors — the one list of codes (send answers and status
# callbacks alike) meaning this number can never get our SMS: code → (suppression reason,
# what it means). "stop" is the reason an inbound START lifts.
DEAD_NUMBER = {21211: ("invalid number", "invalid number"),
               21610: ("stop", "recipient opted out (STOP)"),
               21614: ("not a mobile number", "not a mobile number"),
               30004: ("blocked", "message blocked"),
               30005: ("invalid number", "unknown destination handset"),
               30006: ("not a mobile number", "landline or unreachable carrier")}
# Not sendable from this sender, but the number itself may be fine.
PERMANENT_CODES = {21408: "sending to this region is not enabled",
                   21612: "number not reachable from this sender"}


class HeaderKeepingHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, remembering the headers of the last answer in each thread."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._local.headers = None
        response = super().request(*args, **kwargs)
        self._local.headers = response.headers
        return response

    def last_headers(self) -> Any:
        return getattr(self._local, "headers", None)


def account_of(settings: Settings) -> TwilioSettings:
    """The account's settings (a copy), refused in production with nowhere for Twilio to
    report delivery status (placeholder secrets: refused by Settings)."""
    config = own_copy(settings.twilio)
    if settings.env == "production" and not (config.status_callback_url or settings.public_url):
        raise ConfigError("set OMNICASCADE_PUBLIC_URL (or OMNICASCADE_TWILIO_STATUS_"
                          "CALLBACK_URL) so Twilio can report delivery status")
    return config


def twilio_client(config: TwilioSettings) -> tuple[Client, HeaderKeepingHttpClient]:
    """The SDK's client for the account (API key + secret, else the auth token), keeping
    the headers of each answer (Retry-After)."""
    user, password = ((config.api_key, config.api_secret) if config.api_key
                      else (config.account_sid, config.auth_token))
    http = HeaderKeepingHttpClient(timeout=config.timeout_s)
    client = Client(user, password, config.account_sid, http_client=http)
    if config.api_base_url:
        client.api.base_url = config.api_base_url.rstrip("/")
    return client, http


def callback_url(config: TwilioSettings, callback_base: str | None) -> str | None:
    return config.status_callback_url or (
        f"{callback_base.rstrip('/')}/webhooks/twilio" if callback_base else None)


def status_callback(callback: str, delivery_id: str) -> str:
    """The status callback URL of one message: the opaque delivery id, never the number."""
    sep = "&" if "?" in callback else "?"
    return f"{callback}{sep}{urlencode({'delivery': delivery_id})}"


def create_message(client: Client, http: HeaderKeepingHttpClient, params: dict[str, Any],
                   classify: Callable[[int, int | None, str, float | None], Exception]) -> Any:
    """messages.create in the calling thread; an API error answer becomes `classify`'s
    exception, a request that never reached Twilio is retryable, anything else ambiguous."""
    try:
        return client.messages.create(**params)
    except TwilioException as exc:
        status = getattr(exc, "status", None)
        if status is None:
            raise  # not an API answer: ambiguous
        raise classify(int(status), getattr(exc, "code", None),
                       getattr(exc, "msg", None) or getattr(exc, "detail", None)
                       or getattr(exc, "title", None) or str(exc),
                       retry_after_seconds(http.last_headers())) from None
    except RequestException as exc:
        if never_connected(exc):
            raise RetryableSendError(f"Twilio unreachable: {exc}") from None
        raise  # the request may have reached Twilio: ambiguous


def e164(number: str) -> str:
    """The number in E.164, or PermanentSendError if it cannot be an SMS destination."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise PermanentSendError(f"invalid phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PermanentSendError("invalid phone number (not a valid E.164 number)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def require_account(config: TwilioSettings) -> None:
    """The account SID and a credential (auth token, or API key + secret): every Twilio
    channel needs them."""
    config.require("account_sid")
    if not (config.auth_token or (config.api_key and config.api_secret)):
        config.require("auth_token")


class TwilioChannel:
    provider = "twilio"

    def __init__(self, config: TwilioSettings, *, callback_base: str | None = None,
                 max_wait_s: float = 5.0):
        require_account(config)
        if not (config.messaging_service_sid or config.from_number):
            config.require("messaging_service_sid")
        self.config = config
        self.client, self.http = twilio_client(config)
        self.callback = callback_url(config, callback_base)
        self.limiter = limiter(config.rate, config.burst, max_wait_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioChannel:
        config = account_of(settings)
        return cls(config, callback_base=settings.link_base_url(),
                   max_wait_s=fit_into_activity(config, settings.send_timeout_s))

    def params(self, message: Message) -> dict[str, Any]:
        params: dict[str, Any] = {"to": e164(message.to), "body": message.body}
        if self.config.messaging_service_sid:
            params["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            params["from_"] = self.config.from_number
        if self.callback:
            params["status_callback"] = status_callback(self.callback, message.delivery_id)
        return params

    async def send(self, message: Message) -> SendResult:
        params = self.params(message)
        sent = await asyncio.to_thread(self._create, params)
        segments = int(sent.num_segments) if str(sent.num_segments or "").isdigit() else None
        return SendResult(provider=self.provider, message_id=sent.sid,
                          segments=segments or None)

    def _create(self, params: dict[str, Any]) -> Any:
        return create_message(self.client, self.http, params, classify)


def classify(status: int, code: int | None, text: str,
             retry_after: float | None = None) -> Exception:
    if code in DEAD_NUMBER:
        why, meaning = DEAD_NUMBER[code]
        return PermanentSendError(f"{meaning} (Twilio {code})", suppress=True,
                                  suppress_reason=why)
    if code in PERMANENT_CODES:
        return PermanentSendError(f"{PERMANENT_CODES[code]} (Twilio {code})")
    return RetryableSendError(f"Twilio {status}" + (f"/{code}" if code else "") + f": {text}",
                              retry_after=retry_after)
