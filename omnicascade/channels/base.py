"""The one extension point for providers: `async send(message) -> SendResult`.

A channel classifies every failure so the delivery ledger can keep promise 2:
- return SendResult(status="sent") when the provider accepted the message;
- raise RetryableSendError when the message was clearly NOT sent (connection refused,
  4xx validation of the request, 429): the activity retries with backoff;
- raise PermanentSendError when it can never be sent (invalid number, bounced address,
  blocked bot): the step is recorded as failed and the cascade moves on at once;
- any other exception is ambiguous (it may have gone out): the step is recorded as
  `unknown` and never resent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    delivery_id: str  # opaque "{enrollment}:{step}", safe for provider correlation fields
    channel: str
    to: str
    body: str
    customer_id: str
    run_id: str
    step: str
    campaign: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    unsubscribe_url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider: str
    message_id: str | None = None
    segments: int | None = None  # billed units (SMS segments); None = 1


class RetryableSendError(Exception):
    """Clearly not sent; safe to try again (optionally after `retry_after` seconds)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentSendError(Exception):
    """Will never be delivered to this address. `suppress` asks to stop using the address in
    every campaign (bounced, STOPped, blocked bot); `forget` asks to remove a dead address
    from the customer altogether (an unregistered push token)."""

    def __init__(self, reason: str, suppress: bool = False, forget: bool = False,
                 suppress_reason: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.suppress = suppress
        self.forget = forget
        # the suppression's reason (what a later opt-in may lift); default: `reason`
        self.suppress_reason = suppress_reason


@runtime_checkable
class Channel(Protocol):
    """One provider of one channel. A provider with a known throughput also has a
    `limiter` (channels/ratelimit.py); deliver_step waits for its slot *before* the last
    guard, so no pause sits between that guard and `send`."""

    provider: str

    async def send(self, message: Message) -> SendResult: ...


async def pace(channel: Channel, message: Message) -> None:
    """Wait for the channel's next send slot; RetryableSendError when it is far off."""
    limiter = getattr(channel, "limiter", None)
    if limiter is not None:
        await limiter.acquire(message.delivery_id)
