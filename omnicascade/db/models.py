"""Tables. Times are naive UTC everywhere (SQLite has no time zones; PostgreSQL gets the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from omnicascade.clock import now_utc


def to_utc_naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # replies find it
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64))
    push_token: Mapped[str | None] = mapped_column(String(4096))
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Per-channel consent, e.g. {"sms": false}; absent means "not refused".
    consents: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc, onupdate=now_utc)


# A trigger campaign has one version taking events at a time (listening or paused).
ENROLLING = "status IN ('listening', 'paused') AND trigger_event IS NOT NULL"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("uq_runs_one_enrolling_version", "campaign", unique=True,
                            sqlite_where=text(ENROLLING), postgresql_where=text(ENROLLING)),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # The validated spec and every template source, frozen at launch: editing the files
    # later never changes what an in-flight cascade sends.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    trigger_event: Mapped[str | None] = mapped_column(String(128), index=True)
    # vocabulary.RunStatus; every change goes through cascade/lifecycle.py
    status: Mapped[str] = mapped_column(String(16), index=True)
    time_scale: Mapped[float] = mapped_column(Float, default=1.0)  # ×N: a rehearsal (clock.py)
    # False for a rehearsal launched without --live: every channel sends to the outbox.
    sends_live: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    audience_total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    # 1, 2, … per campaign slug; a launch with the same content_hash is the same version
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    superseded_by: Mapped[str | None] = mapped_column(String(64))


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (Index("ix_enrollments_run_customer", "run_id", "customer_id"),
                      Index("ix_enrollments_customer_status", "customer_id", "status"),
                      Index("ix_enrollments_run_status", "run_id", "status"),
                      Index("ix_enrollments_entry", "campaign", "customer_id", "entry_key"),
                      UniqueConstraint("active_entry", name="uq_enrollments_active_entry"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # opaque, no PII
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    customer_id: Mapped[str] = mapped_column(String(255))
    campaign: Mapped[str | None] = mapped_column(String(64))  # the run's slug
    # An entry is (campaign, customer, entry_key): the trigger's `key` value, "" without one.
    entry_key: Mapped[str | None] = mapped_column(String(255))
    # Set while the cascade is live (pending/active), NULL once it ended: the unique index
    # lets the database refuse a second live cascade for an entry, across versions and runs.
    active_entry: Mapped[str | None] = mapped_column(String(64))
    # The event data field a conversion must match (`conversion.match: key`), else NULL.
    match_key: Mapped[str | None] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(64), default="default")
    # pending (row written, workflow not yet confirmed) → active → completed | converted |
    # stopped | exited; or excluded (never started); exit_reason says why where it matters
    status: Mapped[str] = mapped_column(String(16))
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    promo_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    event_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trigger_event_id: Mapped[str | None] = mapped_column(String(255))
    conversion_events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Channel order resolved at enrollment (as_written | cost | preference) and its result.
    order_strategy: Mapped[str | None] = mapped_column(String(16))
    channel_order: Mapped[list[Any] | None] = mapped_column(JSON)
    lookback_s: Mapped[int] = mapped_column(Integer, default=0)
    # `conversion.window` on the wall clock: how long after the cascade finished a
    # conversion still counts for it (NULL: no bound, rows older than the window).
    conversion_window_s: Mapped[float | None] = mapped_column(Float)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime)
    conversion_event_id: Mapped[str | None] = mapped_column(String(255))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Delivery(Base):
    """The delivery ledger: one row per (enrollment, step), inserted before the provider call."""
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_customer_sent", "customer_id", "sent_at"),)
    id: Mapped[str] = mapped_column(String(160), primary_key=True)  # "{enrollment}:{step}"
    enrollment_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    step_key: Mapped[str] = mapped_column(String(32))
    step_index: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))  # cascade | follow_up
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(128))
    # sending → sent | failed | retrying; skipped; unknown (died mid-call, never resent)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    to_address: Mapped[str | None] = mapped_column(String(4096))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int | None] = mapped_column(Integer)  # SMS segments billed
    # Priced once, at send time (channels/pricing.price_of), in cost_currency: exact decimals.
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    cost_currency: Mapped[str | None] = mapped_column(String(3))
    deferred_until: Mapped[datetime | None] = mapped_column(DateTime)  # quiet hours
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    # The moment the last guard passed and the provider was called (the final claim).
    sending_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A provider reported this cascade step failed after accepting it and its cascade has not
    # been told yet: set with the failure, cleared once signalled (the reconciler retries).
    failure_signal_due: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class DeliveryEvent(Base):
    """Provider feedback per delivery: delivered, open, click, bounce, spamreport, …"""
    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_address", "address", "occurred_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str | None] = mapped_column(String(160), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32))
    # The provider's own id for this event: a redelivered webhook changes nothing twice.
    provider_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An inbound message's sender, "<channel>:<number>" (e.g. "whatsapp:+4915…"): the
    # latest one opens that channel's 24 h conversation window (cascade/conversations.py).
    address: Mapped[str | None] = mapped_column(String(80))


class TelegramLink(Base):
    """One-time deep-link tokens binding a Telegram chat to a customer (`/start <token>`)."""
    __tablename__ = "telegram_links"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    chat_id: Mapped[str | None] = mapped_column(String(64))


class OutboxMessage(Base):
    """What the outbox provider 'sent': rendered and stored, never delivered."""
    __tablename__ = "outbox_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(160), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(4096))
    subject: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    # When a retention prune dropped subject, title and bodies (cascade/retention.py).
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime)


class ConversionEvent(Base):
    __tablename__ = "conversions"
    __table_args__ = (Index("ix_conversions_customer_type", "customer_id", "type", "occurred_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(255))
    promo_code: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))  # exact, as the shop sent it
    currency: Mapped[str | None] = mapped_column(String(3))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    stopped: Mapped[int] = mapped_column(Integer, default=0)
    # False: no customer of that id is known (stored, acknowledged, counted as unmatched).
    matched: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class InboundEvent(Base):
    """Trigger events from the shop, stored before anything acts on them."""
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    enrolled: Mapped[int] = mapped_column(Integer, default=0)
    # What the event did besides enrolling: [{"campaign", "reason"}] not enrolled, and the
    # cascades an exit event ended — the same answer for a repeated event_id.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Suppression(Base):
    """Consent is law: an address here is never messaged again on that channel."""
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_suppression"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(4096))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)


class RequestSignature(Base):
    """Every accepted signature of a signed API write, so that each takes effect once
    (api/replay.py); rows older than twice the signature tolerance are pruned."""
    __tablename__ = "request_signatures"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the v2 mac
    signed_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # the signature's t
    accepted_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)


class LoginAttempt(Base):
    """A console login attempt, counted before its password is checked (api/console/
    throttle.py): a failure stays for the window, a success deletes its address's rows."""
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_address", "address", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(64))  # sha256 of the client address
    at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ConsoleSession(Base):
    """A signed-in console session (api/console/sessions.py). The id is a keyed hash of the
    cookie's random token, never the token: a copy of this table opens no session. Log out
    deletes the row; a row past expires_at, or idle past the idle timeout, is refused."""
    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)  # written at most once a minute
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
