"""What the processes tell an operator: the application's Prometheus metrics, defined once
here, and the ids a log line carries (docs/operations.md says what each metric means).

Shared by every package (activities, api, cascade, campaign count into it), so it lives at
the top with the other shared modules and imports nothing of omnicascade. Labels are of
bounded cardinality only — channel, provider, status, outcome, reason, campaign slug, event
type, route template — never a run id, customer id, address or code: every label value goes
through `bounded` or comes from a closed vocabulary. Counting is an in-memory increment:
nothing here touches the database on the hot path.
"""

from __future__ import annotations

import contextvars
import re
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

OTHER = "other"
CHANNELS = ("email", "sms", "whatsapp", "telegram", "push", "webhook")  # = vocabulary.CHANNELS
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")

MESSAGES = Counter("omnicascade_messages_total",
                   "Cascade steps by outcome (sent, failed, skipped, deferred, retrying, "
                   "unknown) and, for skipped/deferred/failed, why",
                   ["channel", "outcome", "reason"])
PROVIDER_SECONDS = Histogram("omnicascade_provider_call_seconds",
                             "Time a provider took to answer one send", ["channel"],
                             buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
CONVERSIONS = Counter("omnicascade_conversions_total",
                      "Conversions received, by type (a type no campaign listens to: other) "
                      "and whether the customer is known", ["type", "matched"])
CASCADES_STARTED = Counter("omnicascade_cascades_started_total",
                           "Cascade workflows started (a duplicate start is not counted)")
CASCADES_ENDED = Counter("omnicascade_cascades_ended_total",
                         "Cascades that ended, by how (completed, converted, stopped, "
                         "exited, erased)", ["status"])
CONVERSION_TO_STOP = Histogram("omnicascade_conversion_to_stop_seconds",
                               "From a conversion being recorded to its cascade ending as "
                               "converted", buckets=(.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))
SENDS_AFTER_CONVERSION = Counter("omnicascade_sends_after_conversion_total",
                                 "Messages found handed to a provider after the customer's "
                                 "conversion was recorded, counted when the cascade ends "
                                 "converted. Must stay 0")
WEBHOOKS = Counter("omnicascade_webhook_requests_total",
                   "Provider webhook requests by outcome (accepted, rejected, bad_signature)",
                   ["provider", "outcome"])
API_REQUESTS = Counter("omnicascade_api_requests_total",
                       "HTTP API requests by route template and status code",
                       ["route", "method", "status"])
RENDER_REFUSALS = Counter("omnicascade_render_budget_refusals_total",
                          "Renders stopped for going over the render budget")
RECONCILER = Counter("omnicascade_reconciler_actions_total",
                     "Work the reconciler finished for a crashed API or launcher",
                     ["action"])
RECONCILER_BACKLOG = Gauge("omnicascade_reconciler_backlog",
                           "Stale work the reconciler found on its last pass (events not "
                           "acted on, cascades not started, failures not told)")
WORKER_UP = Gauge("omnicascade_worker_up", "1 while this process's workers poll Temporal")

# The ids a log line carries (runtime/logs.py writes them in JSON): set where they are
# known, e.g. for the duration of one deliver_step. Ids only: never an address or a name.
LOG_IDS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "omnicascade_log_ids", default=None)


def bounded(value: Any, allowed: Any = None) -> str:
    """A label value that cannot grow without bound or carry personal data: `value` if it
    is in `allowed` (when given) and looks like an identifier of ours, else "other"."""
    text = str(value or "").lower()
    if allowed is not None and text not in allowed:
        return OTHER
    return text if _LABEL.fullmatch(text) else OTHER


def channel(name: str) -> str:
    return bounded(name, CHANNELS)
