"""The one module that talks to Temporal about cascades: connecting, workflow ids, starting,
and the signals (names in workflows/types.py). Everything else calls these functions.

Signals are best effort by design: a conversion is committed to the database before any
signal is sent, and the send activity re-reads the database before every provider call,
so a signal that is lost or late never lets a message through (docs/architecture.md §1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from omnicascade.cascade import lifecycle
from omnicascade.config import Settings
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from omnicascade.telemetry import CASCADES_STARTED
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows import search
from omnicascade.workflows.types import (
    SIGNAL_CONVERSION,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    SIGNAL_STEP_FAILED,
    SIGNAL_STOP,
    WORKFLOW,
    CascadeInput,
    ConversionSignal,
    StopSignal,
)

log = logging.getLogger(__name__)


def workflow_id(enrollment_id: str) -> str:
    """Opaque and deterministic: a retried start can never create a second cascade."""
    return f"cascade-{enrollment_id}"


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """The embedded dev server by default, a cluster or Temporal Cloud when configured.
    `runtime`: the process's Temporal runtime when it is not the default (the worker's,
    which exports the SDK's metrics); its workers must use a client made with it."""
    address = settings.resolved_temporal_address()
    try:
        return await Client.connect(address, namespace=settings.temporal_namespace,
                                    tls=settings.temporal_tls or bool(settings.temporal_api_key),
                                    api_key=settings.temporal_api_key, runtime=runtime)
    except (RuntimeError, RPCError, OSError) as exc:
        hint = " — is `omnicascade server` running?" if settings.embedded else ""
        raise ConfigError(f"cannot reach Temporal at {address}{hint} ({exc})") from None


class LazyClient:
    """Connects on first use and again after a failure, so the API keeps recording
    conversions (and the send-time guard keeps working) while Temporal is unreachable."""

    def __init__(self, settings: Settings, client: Client | None = None):
        self.settings, self._client, self._lock = settings, client, asyncio.Lock()

    async def get(self) -> Client | None:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self.settings), 5)
                except (TimeoutError, ConfigError) as exc:
                    log.warning("Temporal unavailable: %s", exc)
                    return None
        return self._client


async def start_cascade(client: Client, settings: Settings, inp: CascadeInput) -> bool:
    """Start one cascade; False if it was already started (idempotent by workflow id)."""
    attrs = None
    if settings.search_attributes:
        attrs = TypedSearchAttributes([
            SearchAttributePair(search.CAMPAIGN, inp.campaign),
            SearchAttributePair(search.RUN, inp.run_id),
            SearchAttributePair(search.CUSTOMER, inp.customer_id),
            SearchAttributePair(search.STATUS, EnrollmentStatus.ACTIVE.value)])
    try:
        await client.start_workflow(
            WORKFLOW, inp, id=workflow_id(inp.enrollment_id), task_queue=settings.task_queue,
            search_attributes=attrs, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        CASCADES_STARTED.inc()
        return True
    except WorkflowAlreadyStartedError:
        return False


async def start_cascades(client: Client, settings: Settings, inputs: Iterable[CascadeInput],
                         *, on_progress: Callable[[int], None] | None = None,
                         chunk: int = 500) -> int:
    """Start many cascades with bounded concurrency, marking each chunk active in the DB."""
    def activate(ids: list[str]) -> None:
        with session_scope(settings.db_url) as session:
            lifecycle.activate(ids, session=session)
    limit = asyncio.Semaphore(settings.start_concurrency)

    async def one(inp: CascadeInput) -> None:
        async with limit:
            await start_cascade(client, settings, inp)

    done = 0
    batch: list[CascadeInput] = []

    async def flush() -> None:
        nonlocal done
        await asyncio.gather(*(one(i) for i in batch))
        await asyncio.to_thread(activate, [i.enrollment_id for i in batch])
        done += len(batch)
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for inp in inputs:
        batch.append(inp)
        if len(batch) >= chunk:
            await flush()
    if batch:
        await flush()
    return done


async def _signal(client: Client, enrollment_id: str, name: str, arg: object,
                  timeout_s: float) -> str:
    """"signalled"; "closed" when the cascade has already ended (nothing to tell); or
    "later" when Temporal could not be reached."""
    handle = client.get_workflow_handle(workflow_id(enrollment_id))
    try:
        sent = handle.signal(name) if arg is None else handle.signal(name, arg)
        await asyncio.wait_for(sent, timeout_s)
        return "signalled"
    except (TimeoutError, RPCError, OSError) as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            return "closed"
        log.info("%s for %s not delivered (%s)", name, enrollment_id, exc)
        return "later"


async def signal_conversion(client: Client, enrollment_ids: Sequence[str], event_id: str,
                            type_: str, timeout_s: float = 5.0) -> int:
    """Tell each cascade its customer converted; returns how many were told. Failures are
    logged, not raised: the send-time guard already covers them."""
    sig = ConversionSignal(event_id, type_)
    results = await asyncio.gather(*(_signal(client, e, SIGNAL_CONVERSION, sig, timeout_s)
                                     for e in enrollment_ids))
    for enrollment_id, result in zip(enrollment_ids, results, strict=True):
        if result == "later":
            log.warning("conversion %s: signal to %s not delivered; the send-time guard "
                        "will stop it", event_id, enrollment_id)
    return sum(r == "signalled" for r in results)


async def signal_step_failed(client: Client, delivery_id: str, timeout_s: float = 5.0) -> str:
    """Tell the cascade owning `delivery_id` ("{enrollment}:{step}") that the step failed
    permanently after the provider accepted it (a bounce), so it moves on at once."""
    enrollment_id, _, step_key = delivery_id.rpartition(":")
    return await _signal(client, enrollment_id, SIGNAL_STEP_FAILED, step_key, timeout_s)


async def signal_stop(client: Client, enrollment_ids: Sequence[str], status: str, reason: str,
                      timeout_s: float = 5.0) -> int:
    """Tell each cascade to end now (its enrollment is already ended in the database, so a
    lost signal only means the send-time guard stops it instead). Returns how many were
    told."""
    sig = StopSignal(status, reason)
    results = await _bounded(client, enrollment_ids, SIGNAL_STOP, sig, timeout_s)
    return sum(r == "signalled" for r in results)


async def signal_pause(client: Client, enrollment_ids: Sequence[str], *, resume: bool = False,
                       timeout_s: float = 5.0) -> int:
    """Pause (or resume) each cascade's sends; the run's status in the database is what the
    send-time guard reads, so a lost signal only delays the effect."""
    results = await _bounded(client, enrollment_ids, SIGNAL_RESUME if resume else SIGNAL_PAUSE,
                             None, timeout_s)
    return sum(r == "signalled" for r in results)


async def _bounded(client: Client, enrollment_ids: Sequence[str], name: str, arg: object,
                   timeout_s: float, concurrency: int = 200) -> list[str]:
    limit = asyncio.Semaphore(concurrency)

    async def one(enrollment_id: str) -> str:
        async with limit:
            return await _signal(client, enrollment_id, name, arg, timeout_s)
    return list(await asyncio.gather(*(one(e) for e in enrollment_ids)))


async def delete_cascades(client: Client, enrollment_ids: Sequence[str],
                          timeout_s: float = 10.0) -> list[str]:
    """Erasure: terminate each cascade (if it still runs) and delete its execution, history
    and visibility record included (DeleteWorkflowExecution; the server finishes the
    deletion shortly after answering). Returns the enrollment ids whose execution could not
    be deleted now (Temporal unreachable): the caller keeps them to try again."""
    async def one(enrollment_id: str) -> bool:
        handle = client.get_workflow_handle(workflow_id(enrollment_id))
        try:
            try:
                await asyncio.wait_for(handle.terminate(reason="customer erased"), timeout_s)
            except RPCError as exc:  # NOT_FOUND: already closed, deleted, or never started
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            request = DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id(enrollment_id)))
            try:
                await asyncio.wait_for(
                    client.workflow_service.delete_workflow_execution(request), timeout_s)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            return True
        except (TimeoutError, RPCError, OSError) as exc:
            log.warning("cascade of %s not deleted yet (%s)", enrollment_id, exc)
            return False
    limit = asyncio.Semaphore(50)

    async def bounded(enrollment_id: str) -> bool:
        async with limit:
            return await one(enrollment_id)
    done = await asyncio.gather(*(bounded(e) for e in enrollment_ids))
    return [e for e, ok in zip(enrollment_ids, done, strict=True) if not ok]
