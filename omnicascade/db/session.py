"""Engines and sessions. SQLite gets WAL and a busy timeout so the API, the worker and the
CLI can write to the same file at once; PostgreSQL needs nothing special."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver we ship (SQLAlchemy would
    otherwise look for psycopg2, which is not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache(maxsize=16)
def get_engine(url: str, readonly: bool = False) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False,
                                                  "isolation_level": None},
                               pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        # Take the write lock when the transaction starts: in WAL mode a deferred
        # transaction that later writes can fail with SQLITE_BUSY_SNAPSHOT, which no busy
        # timeout retries. IMMEDIATE makes concurrent writers queue politely instead.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Readers (reports, listings) take no write lock and never block a send.
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


@lru_cache(maxsize=16)
def get_sessionmaker(url: str, readonly: bool = False) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url, readonly), expire_on_commit=False)


@contextmanager
def read_scope(url: str) -> Iterator[Session]:
    """A read-only transaction: on SQLite it takes no write lock (reports, listings)."""
    session = get_sessionmaker(url, True)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(url: str) -> None:
    """Ask the database one trivial question (raises when it does not answer): /health and
    /ready both mean exactly this by "the database answers"."""
    with read_scope(url) as session:
        session.execute(text("SELECT 1"))
