"""Provider rate limits that hold across workers: a channel with a configured rate
(`OMNICASCADE_<CHANNEL>_RATE`, messages per second, e.g. OMNICASCADE_SMS_RATE=5) sends on a
Temporal task queue of its own, `<task queue>-send-<channel>`, whose server-side dispatch
limit (`max_task_queue_activities_per_second`) is that rate. Temporal hands out that
queue's send activities no faster than the rate, whichever worker polls, so the limit holds
for one worker or twenty — unlike a provider's own `…_RATE` pacing (channels/ratelimit.py),
which is per worker process.

One function decides the queue of a channel (`send_queue`): the planner writes it into
each step of a new cascade (cascade/plan.py), and the worker polls every such queue
(runtime/worker.py). Both read the same environment, so configure the rate for the API,
the launcher and every worker alike. A channel without a rate sends on the main queue.
Only workers with the rate poll its queue: a poller without a rate beside ones with it
lets the queue run unlimited (measured 14.7/s against 5/s), so none may. To lift a limit,
raise it instead of removing it: cascades planned with it still send on its queue.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnicascade.errors import ConfigError
from omnicascade.vocabulary import CHANNELS


class ChannelRates(BaseSettings):
    """Messages per second each channel's provider allows across all workers; 0 = none."""
    model_config = SettingsConfigDict(env_prefix="OMNICASCADE_", env_file=".env",
                                      extra="ignore")
    email_rate: float = Field(default=0.0, ge=0)
    sms_rate: float = Field(default=0.0, ge=0)
    whatsapp_rate: float = Field(default=0.0, ge=0)
    telegram_rate: float = Field(default=0.0, ge=0)
    push_rate: float = Field(default=0.0, ge=0)
    webhook_rate: float = Field(default=0.0, ge=0)

    def of(self, channel: str) -> float:
        return float(getattr(self, f"{channel}_rate", 0.0))


@lru_cache(maxsize=1)
def channel_rates() -> ChannelRates:
    """The configured rates, read once per process (`channel_rates.cache_clear()` re-reads)."""
    try:
        return ChannelRates()
    except ValidationError as exc:  # e.g. OMNICASCADE_SMS_RATE=fast
        raise ConfigError(f"channel rates: {exc}") from None


def send_queue(task_queue: str, channel: str, rates: ChannelRates | None = None) -> str | None:
    """The task queue this channel's sends run on; None = the cascade's own queue."""
    rate = (rates or channel_rates()).of(channel)
    return f"{task_queue}-send-{channel}" if rate > 0 else None


def send_queues(task_queue: str, rates: ChannelRates | None = None
                ) -> dict[str, tuple[str, float]]:
    """Every rate-limited channel's queue and its rate: what a worker must poll."""
    rates = rates or channel_rates()
    return {ch: (queue, rates.of(ch)) for ch in CHANNELS
            if (queue := send_queue(task_queue, ch, rates)) is not None}
