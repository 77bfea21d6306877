"""The one request signature omnicascade uses in both directions, Stripe-style:
`X-Omnicascade-Signature: t=<unix seconds>,v2=<hex mac>`, the mac being HMAC-SHA256 over
"<t>.<METHOD>.<path>.<raw body>". The shop signs its writes to our API with it
(api/signature.py verifies them), and the webhook channel signs each message it POSTs to
the shop's receiver with it (channels/webhook_channel.py). One function computes the mac;
it lives here, the lowest layer both the API and the channels may import."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Omnicascade-Signature"


def mac(secret: str, t: int | str, method: str, path: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<t>.<METHOD>.<path>.<raw body>" (METHOD upper-case)."""
    signed = f"{t}.{method.upper()}.{path}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for one request: `path` as sent, e.g. "/v1/events" (with "?query"
    if there is one), never a full URL."""
    if not path.startswith("/"):
        raise ValueError(f"sign the request path as sent (e.g. /v1/events), not {path!r}")
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v2={mac(secret, t, method, path, body)}"
