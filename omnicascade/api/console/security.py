"""Who may use the console, and what its pages let a browser do.

- **Password**: OMNICASCADE_CONSOLE_PASSWORD (config.py SECRETS: generated 0600 into the
  state directory in development, a placeholder refused in production), compared in
  constant time (both sides hashed first, so not even its length leaks).
- **Session** (sessions.py): a random token in a cookie — HttpOnly, SameSite=Strict, Secure
  over HTTPS — naming a row of console_sessions (stored as its keyed hash). Log out deletes
  the row, so a copied cookie is refused afterwards; `omnicascade console logout-all` and a
  new password end every session; a session ends `console_session_s` after the login and
  `console_idle_s` after its last request. Any number of API processes share them.
- **Keys**: derived from OMNICASCADE_SESSION_SECRET (until it is set, the webhook secret)
  *and* the password. The secret rotates (`new,old`): new sessions and new customer URLs
  use the first key; sessions and URLs made under any listed key keep working.
- **CSRF**: every form carries HMAC(key, session id); the login form, before any session,
  HMAC(key, a random pre-login cookie). A POST without the right one is refused (403).
- **Login rate limit** (throttle.py): 5 attempts per client address per 5 minutes, counted
  in the database before the password is checked (any concurrency, any number of API
  processes); while limited even the right password is refused. A flood from many
  addresses slows every login and cuts each address to one try, but never refuses an
  address with no failures of its own.
- **Opaque ids**: a customer's page is `/customers/<token>`, the id encrypted with AES-SIV
  (deterministic: one URL per customer; authenticated: a forged token is a 404), so no
  email, phone or customer id — which shops often make of an email — lands in a URL, a log
  or a Referer.
- **Headers**: a strict Content-Security-Policy (scripts and styles from /static only, no
  inline code), no framing, no caching of pages that carry PII; the email preview frame has
  its own policy (sandboxed, no scripts, no network).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-src 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                "Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-store"}
# A stored email's HTML, shown in <iframe sandbox>: inline styles (emails use them), images
# only inline (no tracking pixel fetched), no script, no form, framed by the console only.
FRAME_POLICY = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'")
FRAME_HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": FRAME_POLICY,
                 "X-Frame-Options": "SAMEORIGIN"}


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two texts (hashed first: lengths leak nothing)."""
    return hmac.compare_digest(hashlib.sha256(a.encode("utf-8", "replace")).digest(),
                               hashlib.sha256(b.encode("utf-8", "replace")).digest())


@dataclass
class Keys:
    """Every key of the console, derived from the server's secret (and the password)."""
    session: bytes
    ids: bytes

    @classmethod
    def derive(cls, secret: str, password: str) -> Keys:
        root = secret.encode()
        pw = hashlib.sha256(password.encode()).hexdigest()
        return cls(session=bytes.fromhex(_mac(root, "omnicascade/console/session", pw)),
                   ids=bytes.fromhex(_mac(root, "omnicascade/console/ids/1")
                                     + _mac(root, "omnicascade/console/ids/2")))


@dataclass
class OpaqueIds:
    key: bytes  # hides: the session secret's first key's
    old: tuple[bytes, ...] = ()  # reveal too: the other listed keys' (old URLs keep working)

    def hide(self, customer_id: str) -> str:
        sealed = AESSIV(self.key).encrypt(customer_id.encode(), [b"customer"])
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def reveal(self, token: str) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, binascii.Error):
            return None
        for key in (self.key, *self.old):
            try:
                return AESSIV(key).decrypt(raw, [b"customer"]).decode()
            except (ValueError, InvalidTag, UnicodeError):
                continue
        return None
