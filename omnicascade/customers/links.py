"""Signed links placed in messages (one-click unsubscribe). Tokens carry the opaque
enrollment id and channel, never an address, and are HMAC-signed so they cannot be forged."""

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
    return f"{body}.{_sign(settings.resolved_webhook_secret(create=True), payload)}"


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
    expected = _sign(settings.resolved_webhook_secret(), payload)
    # compare_digest raises TypeError for non-ASCII text: such a signature never matches.
    genuine = sig.isascii() and hmac.compare_digest(sig, expected)
    return (enrollment_id, channel) if genuine else None
