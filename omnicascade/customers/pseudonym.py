"""Keyed pseudonyms: what Temporal holds instead of a customer id, and the hashes an erased
person's suppression is kept under.

Both are HMAC-SHA256 under one key, so nobody without it can confirm a guess ("is
alice@example.com in there?") by hashing candidates. The key is OMNICASCADE_PSEUDONYM_KEY
when set, else derived from the webhook secret (HMAC of a fixed label), so a development
setup needs nothing more. It must stay the same for as long as the data it keyed matters:
a new key gives every customer a new `OmnicascadeCustomer` value and makes the stored
hashes of erased people unmatchable (they could be imported again). So a production setup
sets OMNICASCADE_PSEUDONYM_KEY once and keeps it; one that relies on the derived key must
not rotate the webhook secret's first key without setting it to the old derived value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from omnicascade.config import Settings

_LABEL = b"omnicascade pseudonym v1"
PREFIX = "p1:"  # what an OmnicascadeCustomer value starts with (a new scheme gets p2:)


def key(settings: Settings) -> bytes:
    if settings.pseudonym_key:
        return settings.pseudonym_key.encode()
    secret = settings.resolved_webhook_secret(create=True).encode()
    return hmac.new(secret, _LABEL, hashlib.sha256).hexdigest().encode()


def _mac(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def pseudonym(settings: Settings, customer_id: str) -> str:
    """The opaque value a cascade carries for its customer (CascadeInput.customer_id and
    the OmnicascadeCustomer search attribute): the same for every cascade of one customer,
    so the Temporal UI can list them, and meaningless without the key."""
    return PREFIX + _mac(key(settings), f"customer\x1f{customer_id}")[:32]


def normalised(kind: str, value: str) -> str:
    """The one spelling an address is compared in: e-mail lower case, a phone's digits
    after `+` (E.164, as customers/model.py stores it), ids and tokens as given."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        return f"+{digits}"
    return value


# The kinds of identifier an erased person's suppression is kept for, and the customer
# column that holds each (customers/model.py).
KINDS = {"id": "id", "email": "email", "phone": "phone", "telegram": "telegram_chat_id",
         "push": "push_token"}


def subject_hash(settings: Settings, kind: str, value: str, *, secret: bytes | None = None
                 ) -> str:
    """The keyed hash an erased identifier is suppressed under (erased_subjects.hash)."""
    return _mac(secret or key(settings), f"{kind}\x1f{normalised(kind, value)}")


def subject_hashes(settings: Settings, pairs: Iterable[tuple[str, str | None]]) -> list[str]:
    """The hashes of these (kind, value) pairs, blanks left out, each once."""
    secret = key(settings)
    out: list[str] = []
    for kind, value in pairs:
        if value and value.strip():
            h = subject_hash(settings, kind, value, secret=secret)
            if h not in out:
                out.append(h)
    return out


def guess_kinds(value: str) -> list[str]:
    """Which kinds an identifier given on its own (`customers readmit X`) may be: every
    kind it could be is tried, so a customer id that looks like an address is found too."""
    kinds = ["id", "telegram", "push"]
    if "@" in value:
        kinds.append("email")
    if value.strip().startswith("+"):
        kinds.append("phone")
    return kinds
