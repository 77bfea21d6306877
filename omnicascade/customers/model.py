"""Customers: the upsert model shared by the API and file import (customers/importer.py),
and the repository functions over the customers table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.db.models import ConversionEvent, Customer
from omnicascade.db.query import chunks, scalars_in
from omnicascade.validation import storable, time_zone
from omnicascade.vocabulary import OPT_IN_CHANNELS, Channel

# The customer column that holds each channel's address.
# WhatsApp reaches the phone number; the webhook channel addresses the customer by id (the
# shop's receiver knows its customers).
ADDRESS_FIELD = {"email": "email", "sms": "phone", "whatsapp": "phone",
                 "telegram": "telegram_chat_id", "push": "push_token", "webhook": "id"}


def address_for(customer: Customer | None, channel: str) -> str | None:
    """The customer's address on a channel (None: no customer, or no address there)."""
    return getattr(customer, ADDRESS_FIELD[channel], None) if customer is not None else None


def consented(consents: Mapping[str, bool] | None, channel: str) -> bool:
    """Whether the customer may be messaged on this channel: an opt-in channel (WhatsApp)
    needs an explicit yes; every other channel is allowed unless refused."""
    return (consents or {}).get(channel, channel not in OPT_IN_CHANNELS) is True


CORE_FIELDS = ("id", "email", "phone", "telegram_chat_id", "push_token", "timezone", "locale")


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too

    id: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    push_token: str | None = Field(default=None, max_length=4096)
    timezone: str | None = None
    locale: str | None = Field(default=None, max_length=35)
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Per-channel consent, e.g. {"sms": false}. CSV: consent_email, consent_sms, … columns.
    consents: dict[Channel, bool] | None = None

    @field_validator("email", "phone", "telegram_chat_id", "push_token", "timezone", "locale",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        """Syntax only (email-validator; no DNS look-up): refuses CR/LF and other characters
        that could inject mail headers, quoted local parts, IP-literal domains and
        special-use domains that never receive mail (.test, .local, localhost, …). Stored
        as given."""
        if v is not None:
            try:
                validate_email(v, check_deliverability=False)
            except EmailNotValidError as exc:
                raise ValueError(f"{v!r} is not an email address ({exc})") from None
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None:
            digits = v.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
            if not (digits.startswith("+") and digits[1:].isdigit() and 8 <= len(digits) <= 16):
                raise ValueError(f"{v!r} is not a phone number in international format "
                                 f"(e.g. +4915112345678)")
            return digits
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return time_zone(v)


def upsert_customers(customers: list[CustomerIn], *, session: Session) -> tuple[int, int]:
    """Insert new customers, update given fields of existing ones. Returns (created, updated).
    Another writer (a second API process, an import) may insert one of the new ids between
    our look-up and our insert: PostgreSQL then refuses the insert, and the batch is undone
    to its savepoint and done again, finding that row and updating it as if it came first."""
    created = updated = 0
    now = now_utc()
    for batch in chunks(customers):
        for attempt in range(RACE_RETRIES + 1):
            try:
                with session.begin_nested():
                    done = _upsert(batch, now, session=session)
                break
            except IntegrityError:
                if attempt == RACE_RETRIES:
                    raise
        created, updated = created + done[0], updated + done[1]
    return created, updated


RACE_RETRIES = 2  # each retry finds the rows that won: a third loss needs a new writer


def _upsert(batch: Sequence[CustomerIn], now: datetime, *, session: Session) -> tuple[int, int]:
    created = updated = 0
    existing = {c.id: c for c in session.scalars(
        select(Customer).where(Customer.id.in_([c.id for c in batch])))}
    for c in batch:
        fields = c.model_dump(exclude_unset=True, exclude={"id", "attributes", "consents"})
        row = existing.get(c.id)
        if row is None:
            session.add(Customer(id=c.id, attributes=dict(c.attributes), created_at=now,
                                 updated_at=now, consents=dict(c.consents or {}), **fields))
            created += 1
        else:
            for key, value in fields.items():
                setattr(row, key, value)
            if c.attributes:
                row.attributes = {**(row.attributes or {}), **c.attributes}
            if c.consents:
                row.consents = {**(row.consents or {}), **cast(dict[str, Any], c.consents)}
            row.updated_at = now
            updated += 1
    session.flush()
    return created, updated


def customer_dict(row: Customer) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "phone": row.phone,
            "telegram_chat_id": row.telegram_chat_id, "push_token": row.push_token,
            "timezone": row.timezone, "locale": row.locale,
            "attributes": dict(row.attributes or {}), "consents": dict(row.consents or {})}


def customer_orders(customer_id: str, *, session: Session) -> list[dict[str, Any] | None]:
    """The `data` of every conversion of this customer, oldest first (order history)."""
    return list(session.scalars(select(ConversionEvent.data).where(
        ConversionEvent.customer_id == customer_id).order_by(ConversionEvent.occurred_at)))


def load_customers(ids: Sequence[str], *, session: Session) -> dict[str, Customer]:
    return {c.id: c for c in scalars_in(
        session, lambda chunk: select(Customer).where(Customer.id.in_(chunk)), ids)}


# Every attribute name of the stored customers, computed in the database (one row per name).
_ATTRIBUTE_NAMES = {
    "sqlite": "SELECT DISTINCT j.key FROM customers, json_each(customers.attributes) AS j "
              "WHERE json_type(customers.attributes) = 'object'",
    "postgresql": "SELECT DISTINCT json_object_keys(attributes) FROM customers "
                  "WHERE json_typeof(attributes) = 'object'",
}


def attribute_names(*, session: Session) -> tuple[int, set[str]]:
    """(how many customers are stored, every attribute name any of them has)."""
    count = session.scalar(select(func.count()).select_from(Customer)) or 0
    query = _ATTRIBUTE_NAMES.get(session.get_bind().dialect.name)
    if query is not None:
        return count, {str(name) for name in session.scalars(text(query))}
    names: set[str] = set()
    for attrs in session.scalars(select(Customer.attributes)):
        names.update(attrs or {})
    return count, names
