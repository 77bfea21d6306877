"""Client-side pacing for providers with a known throughput (Telegram ≈30 msg/s, a Twilio
sender's MPS). A GCRA token bucket: `burst` sends may go at once, then one per 1/rate s.

A send waits for its slot only while that is short (`max_wait_s`, well inside the activity's
timeout). A slot further away is *held* for that delivery and the send is answered with
RetryableSendError(retry_after=…) before the provider is called, so the ledger records
`retrying`, Temporal reschedules the attempt for the slot, and nothing is dropped or left
half-sent. The limit is per worker process; a limit across all workers is a channel's own
task queue (channels/queues.py, OMNICASCADE_<CHANNEL>_RATE).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from omnicascade.channels.base import RetryableSendError
from omnicascade.channels.retry_after import bounded_delay


class RateLimiter:
    def __init__(self, rate: float, burst: int = 1, max_wait_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.max_wait_s, self._clock = rate, max_wait_s, clock
        self._interval = 1.0 / rate
        self._tolerance = max(0, burst - 1) * self._interval
        self._tat = 0.0  # theoretical arrival time of the next send
        self._held: dict[str, float] = {}

    def _reserve(self, now: float) -> float:
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return max(now, tat - self._tolerance)

    def slot(self, key: str) -> float:
        """Seconds until `key` may be sent (0 = now); reserves that slot for `key`."""
        now = self._clock()
        for stale in [k for k, t in self._held.items() if t < now - 300]:
            del self._held[stale]
        at = self._held.pop(key, None)
        if at is None:
            at = self._reserve(now)
        delay = at - now
        if delay > self.max_wait_s:
            self._held[key] = at
        return max(0.0, delay)

    async def acquire(self, key: str) -> None:
        delay = self.slot(key)
        if delay > self.max_wait_s:
            raise RetryableSendError(f"paced to {self.rate:g} msg/s; slot reserved in "
                                     f"{delay:.1f}s", retry_after=bounded_delay(delay))
        if delay > 0:
            await asyncio.sleep(delay)


def limiter(rate: float, burst: int, max_wait_s: float) -> RateLimiter | None:
    """A limiter for a configured rate, or None when the rate is 0 (unlimited)."""
    return RateLimiter(rate, burst, max_wait_s) if rate and rate > 0 else None
