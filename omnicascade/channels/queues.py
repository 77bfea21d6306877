"""Provider rate limits that hold across workers: a channel with a configured rate
(`OMNICASCADE_<CHANNEL>_RATE`, messages per second, e.g. OMNICASCADE_SMS_RATE=5) sends on a
Temporal task queue of its own, `<task queue>-send-<channel>`, whose server-side dispatch
limit (`max_task_queue_activities_per_second`) is that rate. Temporal hands out that
queue's send activities no faster than the rate, whichever worker polls, so the limit holds
for one worker or twenty — unlike a provider's own `…_RATE` pacing (channels/ratelimit.py),
which is per worker process.

One function decides the queue of a channel (`send_queue`): the planner writes it into
each step of a new cascade (cascade/cascade_input.py), and the worker polls every such queue
(runtime/worker.py). Both read the rates from Settings (`OMNICASCADE_<CHANNEL>_RATE`), so
configure the rate for the API, the launcher and every worker alike. A channel without a
rate sends on the main queue.
Only workers with the rate poll its queue: a poller without a rate beside ones with it
lets the queue run unlimited (measured 14.7/s against 5/s), so none may. To lift a limit,
raise it instead of removing it: cascades planned with it still send on its queue.
"""

from __future__ import annotations

from omnicascade.config import Settings
from omnicascade.vocabulary import CHANNELS


def send_queue(settings: Settings, channel: str) -> str | None:
    """The task queue this channel's sends run on; None = the cascade's own queue."""
    rate = settings.rate_of(channel)
    return f"{settings.task_queue}-send-{channel}" if rate > 0 else None


def send_queues(settings: Settings) -> dict[str, tuple[str, float]]:
    """Every rate-limited channel's queue and its rate: what a worker must poll."""
    return {ch: (queue, settings.rate_of(ch)) for ch in CHANNELS
            if (queue := send_queue(settings, ch)) is not None}
