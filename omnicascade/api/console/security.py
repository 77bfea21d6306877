"""Who may use the console, and what its pages let a browser do.

- **Password**: OMNICASCADE_CONSOLE_PASSWORD (config.py SECRETS: generated 0600 into the
  state directory in development, a placeholder refused in production), compared in
  constant time (both sides hashed first, so not even its length leaks).
- **Session**: a stateless cookie `<id>.<expiry>.<HMAC>` — HttpOnly, SameSite=Strict, Secure
  over HTTPS — signed with a key derived from the webhook secret *and* the password: a new
  password logs every session out. Any number of API processes accept it; it expires after
  `console_session_s`.
- **CSRF**: every form carries HMAC(key, session id); the login form, before any session,
  HMAC(key, a random pre-login cookie). A POST without the right one is refused (403).
- **Login rate limit**: a few failures per client address and window, and a global cap
  against guessing from many addresses; while limited even the right password is refused.
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
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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
class Sessions:
    keys: Keys
    ttl_s: float
    clock: Callable[[], float] = time.time

    def issue(self) -> str:
        sid = secrets.token_urlsafe(18)
        expires = str(int(self.clock() + self.ttl_s))
        return f"{sid}.{expires}.{_mac(self.keys.session, 'session', sid, expires)}"

    def open(self, cookie: str | None) -> str | None:
        """The session id of a genuine, unexpired cookie, else None."""
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        sid, expires, mac = parts
        if not hmac.compare_digest(mac.encode("ascii", "replace"),
                                   _mac(self.keys.session, "session", sid, expires).encode()):
            return None
        return sid if int(expires) > self.clock() else None

    def csrf(self, sid: str) -> str:
        return _mac(self.keys.session, "csrf", sid)

    def login_csrf(self, nonce: str) -> str:
        return _mac(self.keys.session, "login-csrf", nonce)


@dataclass
class LoginLimiter:
    """At most `attempts` failed logins per client address in `window_s`, and
    `global_attempts` in all; a success clears the address's failures."""
    attempts: int = 5
    window_s: float = 300.0
    global_attempts: int = 100
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, who: str) -> deque[float]:
        seen = self.failures.setdefault(who, deque())
        while seen and seen[0] <= self.clock() - self.window_s:
            seen.popleft()
        return seen

    def retry_after(self, who: str) -> int:
        """Seconds to wait before `who` may try again (0: now)."""
        waits = [seen[0] + self.window_s - self.clock()
                 for key, limit in ((who, self.attempts), ("*", self.global_attempts))
                 if len(seen := self._recent(key)) >= limit]
        return int(max(waits) + 1) if waits else 0

    def failed(self, who: str) -> None:
        if len(self.failures) > 10_000:  # addresses forgotten: memory stays bounded
            self.failures = {"*": self.failures.get("*", deque())}
        for key in (who, "*"):
            self._recent(key).append(self.clock())

    def succeeded(self, who: str) -> None:
        self.failures.pop(who, None)


@dataclass
class OpaqueIds:
    key: bytes

    def hide(self, customer_id: str) -> str:
        sealed = AESSIV(self.key).encrypt(customer_id.encode(), [b"customer"])
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def reveal(self, token: str) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return AESSIV(self.key).decrypt(raw, [b"customer"]).decode()
        except (ValueError, InvalidTag, binascii.Error, UnicodeError):
            return None
