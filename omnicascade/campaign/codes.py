"""The codes a `promo.pattern` makes, in the one normal form every code is generated,
stored, looked up and redeemed in (validation.normal_code: NFKC, upper case, stripped; it
lives with the shared checks because reports and the API look codes up too). A generated
code is already normal, so the message shows the code exactly as it is stored. Migration
0009 brought codes stored before this into the form.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from omnicascade.validation import MAX_PROMO_CODE, normal_code

RANDOM_PART = re.compile(r"\{random:(\d+)\}")
# no 0/O, 1/I: codes are read aloud; upper case and ASCII, so already in the normal form
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _random(n: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))


def code_from(pattern: str, fill: Callable[[int], str] = _random) -> str:
    """A code of `pattern`, each {random:N} filled by `fill(N)` (random letters; preview
    passes a stand-in), in the normal form."""
    return normal_code(RANDOM_PART.sub(lambda m: fill(int(m.group(1))), pattern))


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot make codes, or None. Any case is fine: codes come out normal."""
    m = RANDOM_PART.search(pattern)
    if not m or not 4 <= int(m.group(1)) <= 32:
        return ("pattern needs a {random:N} part (4 ≤ N ≤ 32) so every code is unique, "
                "e.g. CART-{random:6}")
    longest = code_from(pattern, lambda n: "W" * n)
    if len(longest) > MAX_PROMO_CODE:
        return f"its codes would be {len(longest)} characters long; at most {MAX_PROMO_CODE} fit"
    return None
