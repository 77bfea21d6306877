"""The console's login limit, counted in the database so that it holds under any
concurrency and across any number of API processes.

- **Counted before the password is checked.** An attempt first inserts its row and
  commits, then counts its address's rows in the window. Each counter sees at least every
  attempt committed before its own, so of any number of racing attempts at most
  `attempts` see a count within the limit; the others are refused (429), however many
  race and however slowly their bodies arrive. Racing attempts may all be refused: each
  counts the others' rows, so the limit errs on the side of fewer checks.
- **Per address: 5 attempts per 5 minutes.** Every attempt's row stays for the window,
  refused ones too (an address that keeps hammering stays limited); the right password
  deletes its address's rows. While limited, even the right password is refused.
  Addresses are stored hashed, never as sent.
- **A flood slows, it never locks out.** With more than `flood_attempts` attempts in the
  window over all addresses (guessing from many addresses), each address gets one try per
  window instead of five, and every try waits `flood_delay_s` before its password is
  checked. An address with no failures of its own is never refused for others' failures:
  a marketer can log in during a flood (after the short wait); one who mistypes during a
  flood waits for the window like any other address.
- Rows older than the window are deleted, a chunk at a time, by the attempts themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from omnicascade.db.models import LoginAttempt
from omnicascade.db.session import session_scope

PRUNE_CHUNK = 100  # old rows deleted per attempt: an attempt adds only one


def _key(who: str) -> str:
    return hashlib.sha256(f"omnicascade/console/login/{who}".encode()).hexdigest()


@dataclass
class LoginLimiter:
    db_url: str
    attempts: int = 5
    window_s: float = 300.0
    flood_attempts: int = 100
    flood_delay_s: float = 1.0
    clock: Callable[[], float] = time.time

    async def attempt(self, who: str) -> int:
        """Count an attempt from address `who`: the seconds to wait (refused), or 0 (go on
        and check the password; the attempt counts as a failure unless `succeeded`)."""
        wait, flood = await run_in_threadpool(self._attempt, _key(who))
        if flood and not wait:
            await asyncio.sleep(self.flood_delay_s)
        return wait

    async def succeeded(self, who: str) -> None:
        """The right password: the address's failures are forgotten."""
        def forget() -> None:
            with session_scope(self.db_url) as session:
                session.execute(delete(LoginAttempt).where(LoginAttempt.address == _key(who)))
        await run_in_threadpool(forget)

    def _attempt(self, key: str) -> tuple[int, bool]:
        now = datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)
        since = now - timedelta(seconds=self.window_s)
        with session_scope(self.db_url) as session:  # committed before anyone counts it
            session.add(LoginAttempt(address=key, at=now))
        with session_scope(self.db_url) as session:
            mine = session.scalar(select(func.count()).where(
                LoginAttempt.address == key, LoginAttempt.at > since)) or 0
            flood = self._everyone(session, since) > self.flood_attempts
            _prune(session, since)
            limit = 1 if flood else self.attempts
            if mine <= limit:
                return 0, flood
            # the next try is counted too: it fits once all but limit - 1 rows have expired
            freed = session.scalar(
                select(LoginAttempt.at).where(LoginAttempt.address == key,
                                              LoginAttempt.at > since)
                .order_by(LoginAttempt.at).offset(mine - limit).limit(1)) or now
            return max(1, int((freed - since).total_seconds()) + 1), flood

    def _everyone(self, session: Session, since: datetime) -> int:
        """Attempts in the window over all addresses, counted up to just past the flood
        mark (a flood of rows makes no count slower)."""
        recent = (select(LoginAttempt.id).where(LoginAttempt.at > since)
                  .limit(self.flood_attempts + 1).subquery())
        return int(session.scalar(select(func.count()).select_from(recent)) or 0)


def _prune(session: Session, since: datetime) -> None:
    """Delete up to PRUNE_CHUNK rows past the window; rows another transaction is deleting
    are skipped (PostgreSQL), so concurrent prunes never wait or deadlock."""
    old = (select(LoginAttempt.id).where(LoginAttempt.at <= since).limit(PRUNE_CHUNK)
           .with_for_update(skip_locked=True))
    session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(old))
                    .execution_options(synchronize_session=False))
