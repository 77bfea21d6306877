"""The console's sessions, kept in the database (console_sessions), so that ending one is
final on every API process.

- **The cookie is a random token** (256 bits); the table stores only its keyed hash,
  HMAC(session key, token), as the session id: a copy of the table opens no session.
- **Keys**: derived from each key of OMNICASCADE_SESSION_SECRET *and* the console
  password (security.Keys). A new session is stored under the first; a cookie is looked
  up under every listed one, so rotating the secret (`new,old`) keeps sessions open, and
  dropping `old` ends the ones made under it. A new password changes every key: every
  session ends (its row is no longer found, and is pruned later).
- **Ends** at Log out (the row is deleted: a copied cookie is refused afterwards), at
  `omnicascade console logout-all` (every row), `ttl_s` after the login
  (console_session_s), or `idle_s` (console_idle_s) after its last request.
- **Few writes**: a request reads its session; last_seen_at is written at most once a
  `touch_s` (a minute), so the idle timeout is exact to within that. A refused session is
  not written either (expired rows are pruned, a chunk at a time, by the logins).
- Every database call runs off the event loop (as throttle.py's do).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from omnicascade.api.console.security import Keys, _mac
from omnicascade.clock import now_utc
from omnicascade.db.models import ConsoleSession
from omnicascade.db.session import read_scope, session_scope

PRUNE_CHUNK = 100  # dead rows deleted per login: a login adds only one
MAX_TOKEN = 128  # longer than any token issued: not even hashed


@dataclass(frozen=True)
class Opened:
    """A live session: its id and the keys it was made under (its CSRF tokens use them)."""
    sid: str
    keys: Keys


@dataclass
class Sessions:
    db_url: str
    keys: list[Keys]  # newest first: new sessions use the first
    ttl_s: float
    idle_s: float
    clock: Callable[[], float] = time.time
    touch_s: float = 60.0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)

    async def issue(self) -> str:
        """A new session: the cookie's token."""
        token = secrets.token_urlsafe(32)
        now = self._now()

        def insert() -> None:
            with session_scope(self.db_url) as session:
                session.add(ConsoleSession(
                    id=_mac(self.keys[0].session, "session", token), created_at=now,
                    last_seen_at=now, expires_at=now + timedelta(seconds=self.ttl_s)))
                self._prune(session, now)
        await run_in_threadpool(insert)
        return token

    async def open(self, token: str | None) -> Opened | None:
        """The live session of a cookie, else None (unknown, ended, expired or idle)."""
        if not token or len(token) > MAX_TOKEN:
            return None
        return await run_in_threadpool(self._open, token)

    def _open(self, token: str) -> Opened | None:
        ids = {_mac(keys.session, "session", token): keys for keys in self.keys}
        now = self._now()
        with read_scope(self.db_url) as session:
            row = session.execute(select(ConsoleSession.id, ConsoleSession.expires_at,
                                         ConsoleSession.last_seen_at)
                                  .where(ConsoleSession.id.in_(list(ids)))).first()
        if row is None:
            return None
        sid, expires_at, last_seen_at = row
        if expires_at <= now or last_seen_at + timedelta(seconds=self.idle_s) <= now:
            return None
        if now - last_seen_at >= timedelta(seconds=self.touch_s):
            with session_scope(self.db_url) as session:
                session.execute(update(ConsoleSession).where(ConsoleSession.id == sid)
                                .values(last_seen_at=now))
        return Opened(sid, ids[sid])

    async def end(self, sid: str) -> None:
        """Log out: the session is gone for every copy of its cookie."""
        def forget() -> None:
            with session_scope(self.db_url) as session:
                session.execute(delete(ConsoleSession).where(ConsoleSession.id == sid))
        await run_in_threadpool(forget)

    def csrf(self, opened: Opened) -> str:
        return _mac(opened.keys.session, "csrf", opened.sid)

    def login_csrf(self, nonce: str) -> str:
        return _mac(self.keys[0].session, "login-csrf", nonce)

    def _prune(self, session: Session, now: datetime) -> None:
        """Delete up to PRUNE_CHUNK sessions that can never open again; rows another
        transaction is deleting are skipped (PostgreSQL): concurrent logins never wait."""
        idle_since = now - timedelta(seconds=self.idle_s)
        dead = (select(ConsoleSession.id)
                .where(or_(ConsoleSession.expires_at <= now,
                           ConsoleSession.last_seen_at <= idle_since))
                .limit(PRUNE_CHUNK).with_for_update(skip_locked=True))
        session.execute(delete(ConsoleSession).where(ConsoleSession.id.in_(dead))
                        .execution_options(synchronize_session=False))


def end_all(db_url: str, idle_s: float, now: datetime | None = None) -> int:
    """`omnicascade console logout-all`: delete every session; how many were still open."""
    now = now or now_utc()
    with session_scope(db_url) as session:
        live = session.scalar(select(func.count()).where(
            ConsoleSession.expires_at > now,
            ConsoleSession.last_seen_at > now - timedelta(seconds=idle_s))) or 0
        session.execute(delete(ConsoleSession))
        return int(live)
