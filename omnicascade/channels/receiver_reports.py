"""What the webhook channel's receiver reports back on `POST /v1/feedback` (api/receiver_reports.py
verifies the signature): `{delivery_id, event, occurred_at, event_id?, reason?, data?}`,
turned here into one `Feedback` item (channels/callbacks.py) that cascade/feedback.py stores
once and applies, like any provider's webhook event.

Events, and the name each is stored under (vocabulary.ENGAGEMENT_EVENTS counts them):
- delivered → `delivered`; opened → `read` (a person read it in their messenger: never
  taken for a machine's pixel fetch); clicked → `click`; replied → `replied`. All count for
  `skip_if` and reports.
- failed → `undelivered` (reported as bounced): the step did not reach the customer and the
  cascade moves on to the next channel at once;
- unsubscribed → the customer's webhook address is suppressed for every campaign.
Only messages of the webhook channel can be reported on: any other delivery id is recorded
as `rejected` (with the reason) and changes nothing (`matched: false`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from omnicascade.channels.callbacks import Feedback, content_id
from omnicascade.db.models import Delivery
from omnicascade.validation import happened, storable

PROVIDER = "webhook"
CHANNEL = "webhook"
FeedbackEvent = Literal["delivered", "opened", "clicked", "replied", "failed", "unsubscribed"]
STORED_AS: dict[str, str] = {"delivered": "delivered", "opened": "read", "clicked": "click",
                             "replied": "replied", "failed": "undelivered",
                             "unsubscribed": "unsubscribed"}


class FeedbackIn(BaseModel):
    """One event about one message the receiver was sent."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too
    _utc = field_validator("occurred_at")(happened)  # 422, not an overflow or 9999

    delivery_id: str = Field(min_length=1, max_length=160,
                             description="the `delivery_id` of the message (its "
                                         "Idempotency-Key)")
    event: FeedbackEvent
    occurred_at: datetime = Field(description="when it happened (ISO 8601 with an offset)")
    event_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="the receiver's own id for this event; without it, a repeat of the "
                    "same delivery_id, event and occurred_at is the same event")
    reason: str | None = Field(default=None, max_length=500,
                               description="why it failed (for `failed`)")
    data: dict[str, Any] | None = None


def event_key(data: FeedbackIn) -> str:
    """The stored event's unique id: a resent report changes nothing twice."""
    if data.event_id:
        return f"{PROVIDER}:{data.event_id}"
    return content_id(PROVIDER, [data.delivery_id, data.event, data.occurred_at.isoformat()])


def feedback_item(data: FeedbackIn, *, session: Session) -> tuple[Feedback, bool]:
    """The item to record, and whether it names a message of the webhook channel."""
    raw = data.model_dump(mode="json", exclude_none=True)
    delivery = session.get(Delivery, data.delivery_id)
    if delivery is None or delivery.channel != CHANNEL:
        return Feedback(PROVIDER, data.event, event_key(data), occurred_at=data.occurred_at,
                        data=raw, reject=f"unknown delivery_id {data.delivery_id!r}: not a "
                                         f"message of the webhook channel"), False
    item = Feedback(PROVIDER, STORED_AS[data.event], event_key(data),
                    delivery_id=delivery.id, occurred_at=data.occurred_at, data=raw)
    if data.event == "failed":
        item.fail = f"webhook receiver: failed{': ' + data.reason if data.reason else ''}"
    elif data.event == "unsubscribed":
        item.suppress = (CHANNEL, None, "unsubscribed")
    return item, True
