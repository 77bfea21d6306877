"""Stable, keyed coin flips: who is in the global control group, and which variant a new
entrant gets. Both are decided outside workflow code (at enrollment) and must give the same
answer in every process, on every machine and Python version, for as long as the salt is
kept — so they use HMAC-SHA256, never Python's hash() (randomised per process) or random.

A key's unit number is the first 53 bits of HMAC-SHA256(salt, purpose ‖ 0x00 ‖ key) divided
by 2**53: exactly representable, uniform on [0, 1). The purpose prefix makes the global
control draw independent of the variant draw even when both use the same salt, so the
control group is not, say, always the first variant's customers. Changing the salt
reshuffles everyone (Braze's advice: at most monthly).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from omnicascade.errors import ConfigError

_BITS = 53


def unit(key: str, *, salt: str, purpose: str) -> float:
    """A uniform number in [0, 1), the same for the same (salt, purpose, key) forever."""
    digest = hmac.new(salt.encode(), purpose.encode() + b"\x00" + key.encode(),
                      hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - _BITS)) / float(1 << _BITS)


def in_global_control(customer_id: str, *, share: float, salt: str) -> bool:
    """Whether this customer belongs to the global control group (gets no campaign message;
    transactional campaigns are exempt — the caller's rule). `share` is 0.05 for 5%."""
    if not 0 <= share < 1:
        raise ConfigError(f"the global control share must be at least 0% and below 100%, "
                          f"got {share:.0%}")
    if share and not salt:
        raise ConfigError("a global control group needs a salt "
                          "(OMNICASCADE_GLOBAL_CONTROL_SALT)")
    return unit(customer_id, salt=salt, purpose="global_control") < share


def assign(key: str, weights: Mapping[str, float], *, salt: str) -> str:
    """The variant for `key` (e.g. run id + customer id) given weights that need not sum to 1.

    Arms are laid out in name order, each over a stretch of [0, 1) as long as its share, and
    the key's unit number picks one; an arm of weight 0 is never picked. The same key,
    weights and salt always give the same arm; when the weights change (a bandit update)
    some keys move, so call it once, at entry, and store the answer."""
    if not weights:
        raise ConfigError("no variants to assign from")
    bad = {a: w for a, w in weights.items() if not w >= 0}  # catches nan too
    if bad:
        raise ConfigError(f"variant weights must be 0 or more: {bad}")
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError("variant weights must not all be 0")
    u = unit(key, salt=salt, purpose="assign") * total
    upto = 0.0
    names = [a for a in sorted(weights) if weights[a] > 0]
    for name in names:
        upto += weights[name]
        if u < upto:
            return name
    return names[-1]  # u within rounding of the total
