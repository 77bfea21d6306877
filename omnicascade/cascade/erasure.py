"""Erasure, the database half (GDPR Art. 17): one transaction that ends the person's live
cascades as `erased`, removes or anonymises every row that holds them, keeps them out
(erased_subjects) and writes the audit row. The Temporal half runs after the commit
(cascade/erase.py), like a stop: the send-time guard already refuses an erased cascade.

Per table (every column that can hold personal data or the customer id):
- customers, telegram_links, the person's rows in suppressions: deleted (an unsubscribe of
  an address another customer also has stays);
- enrollments, deliveries, conversions, events, outbox_messages: kept for the reports, the
  customer id replaced by one random tombstone per erasure ("erased:<hex>": the person's
  rows still count as one customer, and nothing links the tombstone back to them);
  enrollments lose their trigger data and entry/match keys, deliveries their address,
  conversions and events their `data` (conversions their order id too) and their event ids
  (keyed hashes: a shop's id may spell the person), outbox messages their address,
  subject, title and bodies; a delivery's reason loses any address in it;
- delivery_events of the person's messages, and inbound messages from their numbers:
  address and `data` removed (the event itself stays: engagement counts).

Concurrent writes that name the person (a conversion, an event, a customer write) take the
same per-person lock first (`hold`), so they land wholly before the erasure (and are
erased) or wholly after (and find the person suppressed).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from omnicascade.cascade import lifecycle
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.pseudonym import KINDS, guess_kinds, subject_hash, subject_hashes
from omnicascade.db.erasure_models import ErasedSubject, Erasure
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    Delivery,
    DeliveryEvent,
    Enrollment,
    InboundEvent,
    OutboxMessage,
    Suppression,
    TelegramLink,
)
from omnicascade.db.query import scalars_in
from omnicascade.vocabulary import LIVE_ENROLLMENT, EnrollmentStatus

ERASED_REASON = "erased"
# The identifier kind a channel's address is (a webhook addresses the customer by id).
CHANNEL_KIND = {"email": "email", "sms": "phone", "whatsapp": "phone", "telegram": "telegram",
                "push": "push", "webhook": "id"}


@dataclass
class ErasureOutcome:
    customer_id: str
    erased: bool
    cascades_ended: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    enrollment_ids: list[str] = field(default_factory=list)  # every cascade to delete
    erasure_id: int | None = None
    workflows_deleted: int = 0
    workflows_pending: int = 0

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"customer_id": self.customer_id, "erased": self.erased,
                                "cascades_ended": self.cascades_ended,
                                "workflows_deleted": self.workflows_deleted, "rows": self.rows}
        if self.workflows_pending:
            body["workflows_pending"] = self.workflows_pending
        return body


def _hide_event_ids(settings: Settings, customer_id: str, *, session: Session) -> None:
    """A shop's event ids may spell the person ("cart-chloe-A1"): each becomes one keyed hash
    wherever it occurs, so ids stay unique and linked, and say nothing."""
    def hidden(event_id: str | None) -> str | None:
        return event_id and f"erased:{subject_hash(settings, 'event', event_id)[:32]}"
    for row in [*session.scalars(select(InboundEvent).where(
            InboundEvent.customer_id == customer_id)), *session.scalars(select(
            ConversionEvent).where(ConversionEvent.customer_id == customer_id))]:
        row.event_id = hidden(row.event_id) or row.event_id
    for e in session.scalars(select(Enrollment).where(Enrollment.customer_id == customer_id)):
        e.trigger_event_id, e.conversion_event_id = map(hidden, (e.trigger_event_id,
                                                                 e.conversion_event_id))


def hold(customer_id: str, *, session: Session) -> None:
    """The per-person lock an erasure and every write naming the person take first, for the
    rest of the transaction (PostgreSQL: an advisory lock; SQLite's writers are serial)."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(customer_id.encode()).digest()
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": int.from_bytes(digest[:8], "big", signed=True)})


def is_erased(settings: Settings, pairs: Iterable[tuple[str, str | None]], *,
              session: Session) -> bool:
    """Whether any of these (kind, value) identifiers belongs to an erased person."""
    hashes = subject_hashes(settings, pairs)
    return bool(hashes) and session.scalar(
        select(ErasedSubject.hash).where(ErasedSubject.hash.in_(hashes)).limit(1)) is not None


def refused(settings: Settings, customers: Sequence[Any], *, session: Session) -> set[str]:
    """The ids among these customer writes (CustomerIn) that an erasure keeps out: an
    erased id, or a new customer with an erased address. (A customer already stored who
    shares an address with an erased person is another person: their writes go through.)
    A few queries for a whole import, none past the first when nobody was ever erased."""
    if not customers or session.scalar(select(ErasedSubject.hash).limit(1)) is None:
        return set()
    ids = [c.id for c in customers]
    stored = set(scalars_in(session, lambda chunk: select(Customer.id).where(
        Customer.id.in_(chunk)), ids))
    wanted = {c.id: subject_hashes(settings, [("id", c.id)] if c.id in stored
                                   else identifiers(c)) for c in customers}
    every = sorted({h for hashes in wanted.values() for h in hashes})
    erased = set(scalars_in(session, lambda chunk: select(ErasedSubject.hash).where(
        ErasedSubject.hash.in_(chunk)), every))
    return {cid for cid, hashes in wanted.items() if erased.intersection(hashes)}


def identifiers(values: Any) -> list[tuple[str, str | None]]:
    """A customer's (kind, value) identifiers, from a Customer row or a CustomerIn."""
    return [(kind, getattr(values, column, None)) for kind, column in KINDS.items()]


def readmit(settings: Settings, pairs: Iterable[tuple[str, str | None]], *,
            session: Session) -> int:
    """Remove the suppression of these identifiers (after the person consented again).
    Returns how many hashes were removed."""
    hashes = subject_hashes(settings, pairs)
    if not hashes:
        return 0
    result = session.execute(delete(ErasedSubject).where(ErasedSubject.hash.in_(hashes)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def readmit_any(settings: Settings, value: str, *, session: Session) -> int:
    """`customers readmit ID_OR_ADDRESS`: whatever kind of identifier `value` may be."""
    return readmit(settings, [(kind, value) for kind in guess_kinds(value)], session=session)


def _addresses(customer_id: str, customer: Customer | None, *,
               session: Session) -> set[tuple[str, str]]:
    """Every (channel, address) the person has or was messaged at."""
    found: set[tuple[str, str]] = set()
    if customer is not None:
        for channel, kind in CHANNEL_KIND.items():
            value = getattr(customer, KINDS[kind], None)
            if value:
                found.add((channel, value))
    for channel, address in session.execute(
            select(Delivery.channel, Delivery.to_address).distinct()
            .where(Delivery.customer_id == customer_id, Delivery.to_address.is_not(None))):
        if address:
            found.add((channel, address))
    return found


def _shared(customer_id: str, channel: str, address: str, *, session: Session) -> bool:
    """Whether another customer has this address on this channel."""
    column = getattr(Customer, KINDS[CHANNEL_KIND[channel]])
    return session.scalar(select(Customer.id).where(
        column == address, Customer.id != customer_id).limit(1)) is not None


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


def _scrub(textual: str | None, secrets_: set[str]) -> str | None:
    if not textual:
        return textual
    for value in sorted(secrets_, key=len, reverse=True):
        textual = textual.replace(value, "[erased]")
    return textual


def erase_rows(settings: Settings, customer_id: str, via: str, *,
               session: Session) -> ErasureOutcome:
    """The database half of an erasure; the caller commits. Nothing found (an unknown or
    already-erased id) changes nothing and answers `erased: false`."""
    hold(customer_id, session=session)
    customer = session.get(Customer, customer_id, with_for_update=True)
    enrollments = list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id).with_for_update()))
    owned = [(model, model.customer_id == customer_id) for model in
             (Delivery, OutboxMessage, ConversionEvent, InboundEvent, TelegramLink)]
    if customer is None and not enrollments and not any(
            session.scalar(select(model).where(where).limit(1)) is not None
            for model, where in owned):
        return ErasureOutcome(customer_id, False)
    addresses = _addresses(customer_id, customer, session=session)
    pairs = [("id", customer_id), *((CHANNEL_KIND[ch], a) for ch, a in addresses)]
    tomb = f"erased:{secrets.token_hex(8)}"
    rows: dict[str, int] = {}
    live = [e.id for e in enrollments if e.status in LIVE_ENROLLMENT]
    ended = lifecycle.end_live(session=session, status=EnrollmentStatus.ERASED,
                               reason=ERASED_REASON, enrollment_ids=live) if live else 0
    _hide_event_ids(settings, customer_id, session=session)
    rows["enrollments"] = _count(session.execute(
        update(Enrollment).where(Enrollment.customer_id == customer_id).values(
            customer_id=tomb, event_data=None, entry_key=None, match_key=None)))
    delivery_ids = list(session.scalars(select(Delivery.id).where(
        Delivery.customer_id == customer_id)))
    said = {a for _, a in addresses} | {customer_id}
    for row in session.scalars(select(Delivery).where(Delivery.customer_id == customer_id,
                                                      Delivery.reason.is_not(None))):
        row.reason = _scrub(row.reason, said)
    rows["deliveries"] = _count(session.execute(
        update(Delivery).where(Delivery.customer_id == customer_id).values(
            customer_id=tomb, to_address=None)))
    inbound = [f"{ch}:{a}" for ch, a in addresses if ch in ("sms", "whatsapp", "telegram")]
    rows["delivery_events"] = _count(session.execute(
        update(DeliveryEvent).where(or_(DeliveryEvent.delivery_id.in_(delivery_ids),
                                        DeliveryEvent.address.in_(inbound)))
        .values(data=None, address=None)))
    rows["outbox_messages"] = _count(session.execute(
        update(OutboxMessage).where(OutboxMessage.customer_id == customer_id).values(
            customer_id=tomb, to_address="", subject=None, title=None, body="", html=None)))
    rows["conversions"] = _count(session.execute(
        update(ConversionEvent).where(ConversionEvent.customer_id == customer_id).values(
            customer_id=tomb, data=None, order_id=None)))
    rows["events"] = _count(session.execute(  # one not acted on yet never will be
        update(InboundEvent).where(InboundEvent.customer_id == customer_id).values(
            customer_id=tomb, data=None,
            processed_at=func.coalesce(InboundEvent.processed_at, now_utc()))))
    chats = [a for ch, a in addresses if ch == "telegram"]
    rows["telegram_links"] = _count(session.execute(delete(TelegramLink).where(or_(
        TelegramLink.customer_id == customer_id, TelegramLink.chat_id.in_(chats)))))
    # An unsubscribe of an address another customer also has stays: it protects them too.
    rows["suppressions"] = sum(_count(session.execute(delete(Suppression).where(
        Suppression.channel == ch, Suppression.address == a)))
        for ch, a in sorted(addresses) if not _shared(customer_id, ch, a, session=session))
    rows["customers"] = _count(session.execute(delete(Customer).where(
        Customer.id == customer_id)))
    key_hashes = {subject_hash(settings, kind, value): kind for kind, value in pairs if value}
    known = set(session.scalars(select(ErasedSubject.hash).where(
        ErasedSubject.hash.in_(list(key_hashes)))))
    session.add_all(ErasedSubject(hash=h, kind=k) for h, k in key_hashes.items()
                    if h not in known)
    ids = [e.id for e in enrollments]
    audit = Erasure(via=via, rows=rows, cascades_ended=ended, workflows_deleted=0,
                    workflows_pending=ids or None)
    session.add(audit)
    session.flush()
    return ErasureOutcome(customer_id, True, ended, rows, ids, audit.id,
                          workflows_pending=len(ids))


def secure(session: Session) -> None:
    """SQLite: zero what this transaction deletes or overwrites (the file keeps no stale
    copy of the erased cells); PostgreSQL keeps dead tuples until (auto)vacuum instead."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))


def vacuum_sqlite(db_url: str) -> bool:
    """SQLite, after the erase committed: rewrite the file (VACUUM drops copies that
    earlier updates left in free space) and empty the WAL into it. False if it could not
    (another writer held the database past the busy timeout): the next erase tries again."""
    from omnicascade.db.session import get_engine
    engine = get_engine(db_url)
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("VACUUM")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cur.close()
        return True
    except Exception:  # noqa: BLE001 — sqlite3.OperationalError ("database is locked")
        return False
    finally:
        raw.close()


def record_deletions(erasure_id: int, deleted: int, pending: list[str], *,
                     session: Session) -> None:
    """The Temporal half's result: how many executions were deleted, which are left."""
    audit = session.get(Erasure, erasure_id)
    if audit is not None:
        audit.workflows_deleted = (audit.workflows_deleted or 0) + deleted
        audit.workflows_pending = pending or None


def pending_deletions(*, session: Session, limit: int = 100) -> list[tuple[int, list[str]]]:
    """Erasures whose Temporal executions are not all deleted yet (the reconciler's work)."""
    return [(a.id, list(a.workflows_pending or [])) for a in session.scalars(
        select(Erasure).where(Erasure.workflows_pending.is_not(None))
        .order_by(Erasure.id).limit(limit))]
