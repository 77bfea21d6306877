"""Stripe-style request signing: `X-Omnicascade-Signature: t=<unix>,v1=<hex hmac>` where the
HMAC-SHA256 is over "<t>.<raw body>". Compared in constant time; stale timestamps refused."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Omnicascade-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, tolerance_s: int = 300,
           now: float | None = None) -> str | None:
    """None if the signature is valid, else the reason it is not."""
    if not header:
        return f"missing {HEADER} header"
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    raw_t = parts.get("t", [""])[0]
    # ASCII digits only: int() would also take "١٢٣", "1_000" or 400 digits (then overflow).
    if not (raw_t.isascii() and raw_t.isdigit() and len(raw_t) <= 12):
        return f"{HEADER} has no valid t=<unix seconds>"
    if abs((time.time() if now is None else now) - int(raw_t)) > tolerance_s:
        return f"{HEADER} timestamp is more than {tolerance_s}s away from the server's clock"
    expected = hmac.new(secret.encode(), f"{raw_t}.".encode() + body,
                        hashlib.sha256).hexdigest()
    # compare_digest refuses non-ASCII text with a TypeError: such a value never matches.
    if not any(v.isascii() and hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        return "signature does not match"
    return None
