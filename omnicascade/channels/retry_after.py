"""How long to wait before the next attempt of a send a provider refused for now: the one
bounded reading of every provider's `Retry-After` (SendGrid, Twilio SMS and WhatsApp, FCM,
Telegram's retry_after, the webhook channel) and of our own pacing delay.

A provider's number decides the next attempt (Temporal's `next_retry_delay` is not capped
by the retry policy), so it is never trusted as given: the delay is at most
SEND_RETRY_MAX_S (the policy's own maximum interval), and anything that is not a sane
delay — inf, nan, negative, not a number, an unparsable or absurd date — is None, i.e.
the retry policy's own back-off. Never raises.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from omnicascade.vocabulary import SEND_RETRY_MAX_S

# RFC 9110 delta-seconds is digits only; a fraction is tolerated (some providers send one).
# Bounded length: a 5,000-digit "number" is garbage, not a long wait.
_DELTA = re.compile(r"[0-9]{1,32}(?:\.[0-9]{1,9})?")
_MAX_DATE_CHARS = 64  # an IMF-fixdate is 29 characters


def bounded_delay(seconds: Any) -> float | None:
    """A delay in seconds (a number or a timedelta) capped at SEND_RETRY_MAX_S; None for
    anything that is not a finite, non-negative number."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        value = float(seconds)
    except (OverflowError, ValueError):  # an int too large for a float
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, float(SEND_RETRY_MAX_S))


def parse_retry_after(value: Any, now: float | None = None) -> float | None:
    """Seconds to wait from one Retry-After value: delta-seconds or an HTTP date (a date
    in the past means now: 0). `now` is a Unix time (default: the wall clock)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return bounded_delay(value)
    text = value.strip()
    if _DELTA.fullmatch(text):
        return bounded_delay(float(text))
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
        at = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return bounded_delay(max(0.0, at - (time.time() if now is None else now)))


def retry_after_seconds(headers: Mapping[str, Any] | None,
                        now: float | None = None) -> float | None:
    """The bounded delay from a response's Retry-After header (any case), or None."""
    value = None
    try:
        for key, v in (headers or {}).items():
            if str(key).lower() == "retry-after":
                value = v
    except (AttributeError, TypeError):
        return None
    return None if value is None else parse_retry_after(value, now)
