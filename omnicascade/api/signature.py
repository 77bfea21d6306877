"""Request signing, v2: `X-Omnicascade-Signature: t=<unix seconds>,v2=<hex mac>` where the
mac is HMAC-SHA256, keyed with OMNICASCADE_WEBHOOK_SECRET, over "<t>.<METHOD>.<path>.<raw
body>" (METHOD upper-case, path as sent with any `?query`): a body signed for one route or
method is refused on every other. Compared in constant time; a `t` more than the tolerance
away from the server's clock is refused; each signature takes effect once (replay.py).
The old v1 form (t + body only) is refused with a message that says how to sign now.
The secret rotates: given `new,old` (Settings.keys), a signature made with any listed key
verifies; shops sign with the first once they have it."""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

# The mac and the header are shared with the webhook channel, which signs its messages the
# same way (channels/signing.py); `sign` is re-exported for the shop-side callers.
from omnicascade.channels.signing import HEADER, mac
from omnicascade.channels.signing import sign as sign

V1_REFUSED = ('v1 signatures (t + body only) are no longer accepted: sign '
              '"<t>.<METHOD>.<path>.<body>" with HMAC-SHA256 and send it as '
              f'{HEADER}: t=<t>,v2=<hex>; see README, HTTP API')


class SignatureError(ValueError):
    """Why a signature is refused: the 401's message."""


@dataclass(frozen=True)
class Signed:
    """A verified signature: its timestamp and the v2 value that matched."""
    t: int
    mac: str


def verify(secret: str | Sequence[str], header: str | None, method: str, path: str, body: bytes,
           tolerance_s: int = 300, now: float | None = None) -> Signed:
    """The signature if it is valid for this method, path, body and time; else
    SignatureError with the reason. Whether it was used before is replay.py's question.
    `secret`: one key, or every key of the rotating secret (any may have signed)."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    if "v2" not in parts:
        raise SignatureError(V1_REFUSED if "v1" in parts else
                             f"{HEADER} has no v2=<hex HMAC-SHA256>; see README, HTTP API")
    raw_t = parts.get("t", [""])[0]
    # ASCII digits only: int() would also take "١٢٣", "1_000" or 400 digits (then overflow).
    if not (raw_t.isascii() and raw_t.isdigit() and len(raw_t) <= 12):
        raise SignatureError(f"{HEADER} has no valid t=<unix seconds>")
    if abs((time.time() if now is None else now) - int(raw_t)) > tolerance_s:
        raise SignatureError(f"{HEADER} timestamp is more than {tolerance_s}s away from the "
                             f"server's clock")
    for key in [secret] if isinstance(secret, str) else secret:
        expected = mac(key, raw_t, method, path, body)
        # compare_digest refuses non-ASCII text with a TypeError: such a value never matches.
        if any(v.isascii() and hmac.compare_digest(expected, v) for v in parts["v2"]):
            return Signed(int(raw_t), expected)
    raise SignatureError("signature does not match (signed string: "
                         "\"<t>.<METHOD>.<path>.<raw body>\")")
