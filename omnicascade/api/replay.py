"""Each signature takes effect once. The route's transaction first inserts the signature's
hash into request_signatures (its primary key): a replay, or an identical request racing
the first, fails that insert and is refused with no effect; if the route's work fails, the
transaction rolls back and the signature is not used up. A signature older than the
tolerance is refused anyway, so rows past twice the tolerance are deleted, a chunk at a
time, by the inserts themselves: the table holds about one window of requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from omnicascade.api.signature import SignatureError, Signed
from omnicascade.clock import now_utc
from omnicascade.db.models import RequestSignature

PRUNE_CHUNK = 100  # old rows deleted per accepted request: a request adds only one
ALREADY_USED = ("signature already used: each signed request takes effect once; sign every "
                "new attempt afresh (a new t)")


def key(signed: Signed) -> str:
    """What the table stores: a hash of the matching v2 value, never the value itself."""
    return hashlib.sha256(signed.mac.encode()).hexdigest()


def claim(session: Session, signed: Signed, tolerance_s: int) -> None:
    """Use the signature up in `session`'s transaction, or SignatureError if it was used."""
    signed_at = datetime.fromtimestamp(signed.t, UTC).replace(tzinfo=None)
    session.add(RequestSignature(id=key(signed), signed_at=signed_at, accepted_at=now_utc()))
    try:
        session.flush()
    except IntegrityError:  # the caller's transaction rolls back: no effect
        raise SignatureError(ALREADY_USED) from None
    prune(session, tolerance_s)


def prune(session: Session, tolerance_s: int, now: datetime | None = None) -> int:
    """Delete up to PRUNE_CHUNK rows that can never match again; rows another transaction
    is deleting are skipped (PostgreSQL), so concurrent prunes never wait or deadlock."""
    cutoff = (now or now_utc()) - timedelta(seconds=2 * tolerance_s)
    old = (select(RequestSignature.id).where(RequestSignature.signed_at < cutoff)
           .limit(PRUNE_CHUNK).with_for_update(skip_locked=True))
    result = session.execute(delete(RequestSignature).where(RequestSignature.id.in_(old))
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
