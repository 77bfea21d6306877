"""Signed links placed in messages (one-click unsubscribe). Tokens carry the opaque
enrollment id and channel, never an address, and are HMAC-signed so they cannot be forged.

Keyed with OMNICASCADE_LINK_SECRET (until it is set, the webhook secret, which signed every
link sent before it existed). It rotates: new links are signed with its first key and a
link verifies with any listed key, so an old key is kept for as long as messages signed
with it may be read (README, Security): a customer's opt-out must keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac

from omnicascade.config import Settings


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"unsub:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_token(settings: Settings, enrollment_id: str, channel: str) -> str:
    payload = f"{enrollment_id}:{channel}"
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{_sign(settings.keys('link_secret', create=True)[0], payload)}"


def unsubscribe_url(settings: Settings, enrollment_id: str, channel: str) -> str:
    return f"{settings.link_base_url()}/u/{unsubscribe_token(settings, enrollment_id, channel)}"


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[str, str] | None:
    """(enrollment_id, channel) for a genuine token, else None."""
    try:
        body, sig = token.rsplit(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        enrollment_id, channel = payload.rsplit(":", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    # compare_digest raises TypeError for non-ASCII text: such a signature never matches.
    genuine = sig.isascii() and any(hmac.compare_digest(sig, _sign(key, payload))
                                    for key in settings.keys("link_secret"))
    return (enrollment_id, channel) if genuine else None
