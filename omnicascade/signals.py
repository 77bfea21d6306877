"""Signals sent to running cascades from outside the workflow (API, webhooks)."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from omnicascade.workflows import search

log = logging.getLogger(__name__)


async def signal_step_failed(client: Client, delivery_id: str, timeout_s: float = 5.0) -> str:
    """Tell the cascade owning `delivery_id` ("{enrollment}:{step}") that the step failed
    permanently after the provider accepted it, so it moves on without waiting.

    Returns "signalled"; "closed" when that cascade has already ended (nothing to tell); or
    "later" when Temporal could not be reached (the worker's reconciler tries again)."""
    enrollment_id, _, step_key = delivery_id.rpartition(":")
    handle = client.get_workflow_handle(search.workflow_id(enrollment_id))
    try:
        await asyncio.wait_for(handle.signal("step_failed", step_key), timeout_s)
        return "signalled"
    except (TimeoutError, RPCError, OSError) as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            return "closed"
        log.info("step_failed for %s not delivered (%s)", delivery_id, exc)
        return "later"
