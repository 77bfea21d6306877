"""Retention (GDPR Art. 5(1)(e)): what is kept only as long as it is needed, and the prune
that drops the rest. `omnicascade db prune` and the worker (every hour) run the same pass.

OMNICASCADE_RETENTION names a window per kind of data, `messages=90d,events=365d,
feedback=180d` (durations as campaigns write them); a kind not named is kept for ever,
and so is everything by default. Past its window:
- messages: an outbox message's subject, title and bodies (the row stays, `pruned_at` set:
  views say `body_pruned`; the delivery row, its status, cost and counts are untouched);
- events: a processed trigger event's raw `data` (one not acted on yet is kept);
- feedback: a provider callback's raw `data` (the event — delivered, open, click — stays).
Nothing a report, funnel or money figure reads is touched (tests/cascade/test_retention.py).
Conversions keep their `data` (templates read a customer's order history from it, and
lookback matching its keys); erasure is the way to remove a person's (README).

One pass at a time across workers: on PostgreSQL each batch takes a transaction-scoped
advisory lock and a pass that finds it held stops (another worker is pruning); SQLite's
writers are serial anyway. Batches keep each write transaction short: senders wait at most
one batch. Every step is idempotent (rows already pruned are not matched again).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, func, null, select, text, update
from sqlalchemy.orm import Session

from omnicascade.campaign.durations import format_duration, parse_duration
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import DeliveryEvent, InboundEvent, OutboxMessage
from omnicascade.db.session import read_scope, session_scope
from omnicascade.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = ("messages", "events", "feedback")
TABLE_OF = {"messages": "outbox_messages", "events": "events", "feedback": "delivery_events"}
BATCH = 2_000
EVERY_S = 3_600.0
# pg_try_advisory_xact_lock key of the prune ("omnicascade retention", as an int8)
LOCK_KEY = 0x6F6D6E6972657400


def parse_retention(value: str | None) -> dict[str, int]:
    """`messages=90d,events=365d` → {"messages": 7776000, …} (seconds); ConfigError naming
    OMNICASCADE_RETENTION and the part that is wrong. Empty: keep everything."""
    windows: dict[str, int] = {}
    for part in (value or "").split(","):
        if not part.strip():
            continue
        kind, sep, duration = (p.strip() for p in part.partition("="))
        problem = None
        if not sep or kind not in KINDS:
            problem = f"{part.strip()!r} is not KIND=DURATION with KIND one of " \
                      f"{', '.join(KINDS)}; write e.g. messages=90d,events=365d,feedback=180d"
        elif kind in windows:
            problem = f"{kind} is named twice"
        else:
            try:
                windows[kind] = parse_duration(duration)
            except ValueError as exc:
                problem = f"{kind}: {exc}"
            else:
                if windows[kind] <= 0:
                    problem = f"{kind}: a window must be longer than 0 (leave {kind} out " \
                              f"to keep it for ever)"
        if problem:
            raise ConfigError(f"OMNICASCADE_RETENTION={value!r}: {problem}")
    return windows


def windows_of(settings: Settings) -> dict[str, int]:
    return parse_retention(settings.retention)


def _present(column: Any) -> Any:
    """A JSON column holding a value: neither SQL NULL nor JSON null (what an erasure
    leaves), so a row once emptied is never matched (nor counted) again."""
    return column.is_not(None) & (cast(column, Text) != "null")


Target = tuple[str, Any, Any, Any, dict[str, Any]]


def _targets(windows: dict[str, int], now: datetime) -> list[Target]:
    """(table, model, id column, condition, new values) of each kind with a window."""
    out: list[Target] = []
    for kind, seconds in windows.items():
        cutoff = now - timedelta(seconds=seconds)
        if kind == "messages":
            m = OutboxMessage
            out.append((TABLE_OF[kind], m, m.id,
                        (m.sent_at < cutoff) & m.pruned_at.is_(None),
                        {"subject": None, "title": None, "body": "", "html": None,
                         "pruned_at": now}))
        elif kind == "events":
            e = InboundEvent
            out.append((TABLE_OF[kind], e, e.id, (e.received_at < cutoff)
                        & e.processed_at.is_not(None) & _present(e.data), {"data": null()}))
        else:
            f = DeliveryEvent
            out.append((TABLE_OF[kind], f, f.id,
                        (f.recorded_at < cutoff) & _present(f.data), {"data": null()}))
    return out


@dataclass
class PruneResult:
    dry_run: bool
    windows: dict[str, int]
    rows: dict[str, int] = field(default_factory=dict)
    busy: bool = False  # another worker held the lock: this pass stopped early

    def body(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run,
                "windows": {k: format_duration(v) for k, v in self.windows.items()},
                "rows": self.rows, **({"busy": True} if self.busy else {})}


def _locked(session: Session) -> bool:
    """Take the prune's lock for this transaction; False if another pass holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                               {"k": LOCK_KEY}))


def prune(db_url: str, windows: dict[str, int], *, dry_run: bool = False,
          now: datetime | None = None, batch: int = BATCH) -> PruneResult:
    """One pass: per table, how many rows it emptied (or would, with dry_run)."""
    now = now or now_utc()
    result = PruneResult(dry_run, windows)
    for table, model, id_column, where, values in _targets(windows, now):
        if dry_run:
            with read_scope(db_url) as session:
                result.rows[table] = int(session.scalar(
                    select(func.count()).select_from(model).where(where)) or 0)
            continue
        done, after = 0, 0
        while True:  # in id order, each batch after the last: one walk over the table
            with session_scope(db_url) as session:
                if not _locked(session):
                    result.busy = True
                    break
                ids = list(session.scalars(select(id_column).where(where, id_column > after)
                                           .order_by(id_column).limit(batch)))
                if ids:
                    session.execute(update(model).where(id_column.in_(ids), where)
                                    .values(**values)
                                    .execution_options(synchronize_session=False))
                    after = ids[-1]
                done += len(ids)
            if len(ids) < batch:
                break
        result.rows[table] = done
        if result.busy:
            break
    return result


def prune_pass(settings: Settings, *, dry_run: bool = False) -> PruneResult:
    """`omnicascade db prune`: the configured windows (ConfigError if they are wrong)."""
    return prune(settings.db_url, windows_of(settings), dry_run=dry_run)


def start_pruning(settings: Settings, every_s: float = EVERY_S) -> asyncio.Task[None] | None:
    """The worker's hourly pass, as a task (None without OMNICASCADE_RETENTION). A wrong
    value raises ConfigError here, at the worker's start, not an hour later."""
    windows = windows_of(settings)
    return asyncio.create_task(_prune_forever(settings, windows, every_s)) if windows else None


async def _prune_forever(settings: Settings, windows: dict[str, int], every_s: float) -> None:
    while True:
        try:
            result = await asyncio.to_thread(prune, settings.db_url, windows)
            if any(result.rows.values()):
                log.info("retention: pruned %s", ", ".join(
                    f"{t} {n}" for t, n in result.rows.items() if n))
        except Exception:  # keep pruning; the next pass retries
            log.exception("retention pass failed")
        await asyncio.sleep(every_s)
