"""Erase a customer: the database first (cascade/erasure.py, one transaction: the person's
live cascades end `erased`, their data goes, they stay out), then Temporal — each of their
cascade executions terminated and deleted (cascade/temporal.py) — like a stop (promise 1):
the send-time guard refuses an erased cascade whether or not Temporal heard of it.

An unreachable Temporal changes nothing in the database half: the answer says how many
executions are left (`workflows_pending`), the audit row keeps their (opaque) enrollment ids,
and the worker's reconciler deletes them once Temporal answers (`retry_deletions`).
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client

from omnicascade.cascade.erasure import (
    ErasureOutcome,
    erase_rows,
    pending_deletions,
    record_deletions,
    secure,
    vacuum_sqlite,
)
from omnicascade.cascade.temporal import LazyClient, delete_cascades
from omnicascade.config import Settings
from omnicascade.db.session import read_scope, session_scope

log = logging.getLogger(__name__)


def erase_in_database(settings: Settings, customer_id: str, via: str) -> ErasureOutcome:
    """The committed database half (blocking: call it off the event loop). On SQLite the
    transaction zeroes what it frees (secure_delete); the file is vacuumed after it."""
    with session_scope(settings.db_url) as session:
        secure(session)
        return erase_rows(settings, customer_id, via, session=session)


async def forget_workflows(client: Client | LazyClient | None, settings: Settings,
                           erasure_id: int, enrollment_ids: list[str]) -> list[str]:
    """Delete these cascades' executions from Temporal and record it on the audit row;
    returns those left for later."""
    resolved = await client.get() if isinstance(client, LazyClient) else client
    left = list(enrollment_ids) if resolved is None \
        else await delete_cascades(resolved, enrollment_ids, settings.signal_timeout_s * 2)

    def record() -> None:
        with session_scope(settings.db_url) as session:
            record_deletions(erasure_id, len(enrollment_ids) - len(left), left,
                             session=session)
    await asyncio.to_thread(record)
    return left


async def erase_customer(client: Client | LazyClient | None, settings: Settings,
                         customer_id: str, via: str) -> ErasureOutcome:
    """Erase one customer; idempotent (nothing left to erase: `erased: false`)."""
    outcome = await asyncio.to_thread(erase_in_database, settings, customer_id, via)
    return await finish_erasure(client, settings, outcome)


async def finish_erasure(client: Client | LazyClient | None, settings: Settings,
                         outcome: ErasureOutcome) -> ErasureOutcome:
    """After the database half committed: vacuum SQLite, then delete the cascades from
    Temporal (what could not be deleted now is left to the reconciler)."""
    if not outcome.erased or outcome.erasure_id is None:
        return outcome
    if not await asyncio.to_thread(vacuum_sqlite, settings.db_url):
        log.warning("erasure %s: VACUUM could not run (database busy); the next erasure "
                    "vacuums", outcome.erasure_id)
    if outcome.enrollment_ids:
        left = await forget_workflows(client, settings, outcome.erasure_id,
                                      outcome.enrollment_ids)
        outcome.workflows_deleted = len(outcome.enrollment_ids) - len(left)
        outcome.workflows_pending = len(left)
    return outcome


async def retry_deletions(client: Client, settings: Settings) -> int:
    """The reconciler's part: delete the executions earlier erasures could not reach.
    Returns how many were deleted now."""
    def find() -> list[tuple[int, list[str]]]:
        with read_scope(settings.db_url) as session:  # every pass: no write lock
            return pending_deletions(session=session)
    deleted = 0
    for erasure_id, ids in await asyncio.to_thread(find):
        left = await forget_workflows(client, settings, erasure_id, ids)
        deleted += len(ids) - len(left)
        if left:  # Temporal is still away: the next pass tries again
            break
    return deleted
