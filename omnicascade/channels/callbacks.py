"""What providers tell us back, in one shape: each provider module verifies its own webhook
the provider's own way and parses it into `Feedback` items; cascade/feedback.py stores each
item once and applies its effects; api/provider_callbacks.py only routes requests to providers.

The second extension point beside `Channel.send` (channels/base.py): a provider with
callbacks implements `WebhookProvider`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Bind:
    """Bind `address` (a Telegram chat) to the customer who was given the one-time `token`."""
    token: str
    address: str
    max_age_days: int


@dataclass
class Feedback:
    provider: str
    event: str
    provider_event_id: str  # a redelivered webhook changes nothing twice
    delivery_id: str | None = None
    occurred_at: datetime | None = None
    data: dict[str, Any] | None = None
    # (channel, address, reason); address None = the delivery's own address
    suppress: tuple[str, str | None, str] | None = None
    # (channel, address, reasons): the person opted back in; lifts only these reasons.
    # With `bind`, lifted only when the binding succeeds.
    lift: tuple[str, str, tuple[str, ...]] | None = None
    fail: str | None = None  # the step did not reach the customer, for this reason
    # An inbound message from (channel, number): stored with its sender (it opens that
    # channel's 24 h conversation window); with `replies`, it is recorded as a `reply` on
    # the latest message sent there (cascade/conversations.py).
    inbound: tuple[str, str] | None = None
    replies: bool = False
    bind: Bind | None = None
    # The provider could not make sense of this item (e.g. a malformed update): it is
    # recorded as rejected with this reason and changes nothing; the rest of the request
    # is still stored and the provider still gets its 2xx (or it would resend forever).
    reject: str | None = None


@dataclass
class FeedbackOutcome:
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_steps: list[str] = field(default_factory=list)  # delivery ids to signal
    new: set[str] = field(default_factory=set)             # provider_event_ids stored now
    bound: dict[str, str | None] = field(default_factory=dict)  # event id → customer
    signalled: int = 0                                     # cascades told of a failed step


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a provider needs to verify and parse its callback."""
    path: str                     # e.g. /webhooks/twilio
    query: Mapping[str, str]
    headers: Mapping[str, str]    # keys lower-case
    body: bytes
    # The URL(s) the provider may have signed, from configuration only (public URL + path
    # + query), never from the request's Host or X-Forwarded-* headers.
    urls: tuple[str, ...]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def signature(self, *names: str, key: str | None, key_setting: str) -> list[str]:
        """The values of the provider's signature headers, or WebhookRefused: 401 when one
        is missing, 403 when we have no key (`key_setting` unset) to verify them with."""
        values = [self.header(n) or "" for n in names]
        if not all(values):
            raise WebhookRefused(401, f"missing {names[0]} header" if len(names) == 1
                                 else f"missing {' / '.join(names)} headers")
        if not key:
            raise WebhookRefused(403, f"cannot verify: {NOT_CONFIGURED} {key_setting}")
        return values


@dataclass(frozen=True)
class WebhookReply:
    content: str | dict[str, Any]
    media_type: str = "application/json"


class WebhookRefused(Exception):
    """Not verified (401/403) or not understood (400): nothing is stored."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class WebhookProvider(Protocol):
    name: str

    def parse(self, request: WebhookRequest) -> list[Feedback]:
        """Verify the request (raise WebhookRefused) and turn it into feedback items."""
        ...

    def reply(self, items: list[Feedback], outcome: FeedbackOutcome) -> WebhookReply:
        """What the provider expects back once the items are stored."""
        ...


NOT_CONFIGURED = "this webhook is not configured on the server; set"


def content_id(provider: str, raw: Any) -> str:
    """A stable id for an event the provider did not number: the hash of its content."""
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"{provider}:sha256:{digest[:48]}"


def from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
