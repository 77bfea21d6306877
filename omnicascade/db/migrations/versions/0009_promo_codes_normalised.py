"""issue 23: promo codes stored in their one normal form (owner: promo codes)

Codes were stored as generated ("save-T7J6ZG" from a lowercase pattern) while every lookup
upper-cased what the customer typed, so such codes could never be redeemed. Now a code is
generated, stored and compared in its normal form (omnicascade.validation.normal_code:
NFKC, upper case, stripped). This brings stored codes (enrollments.promo_code and
conversions.promo_code) into that form, in Python (SQL upper() leaves non-ASCII letters
alone on SQLite), a batch of rows at a time.

enrollments.promo_code is unique. Two codes differing only in case would collide: the one
already in normal form keeps it (it is the only one a lookup could ever find, before and
after), otherwise the first by enrollment id; the other row is kept unchanged, as
unredeemable as it always was, and named in a WARNING. So is a code whose normal form would
not fit the column (64 characters).

Downgrade leaves the codes normal: they are valid codes under the old lookups too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00
"""
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from omnicascade.validation import MAX_PROMO_CODE, normal_code

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH = 1000
log = logging.getLogger("alembic.runtime.migration")


def _pages(bind: sa.Connection, table: str, key: str) -> Iterator[Sequence[Any]]:
    """(key, code) rows with a code, BATCH at a time, in key order (keyset paging)."""
    after = None
    while True:
        where = "promo_code IS NOT NULL" + ("" if after is None else f" AND {key} > :after")
        rows = bind.execute(sa.text(f"SELECT {key}, promo_code FROM {table} WHERE {where} "
                                    f"ORDER BY {key} LIMIT {BATCH}"), {"after": after}).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def normalise_codes(bind: sa.Connection) -> list[str]:
    """Store every promo code in its normal form; returns the enrollment ids left as they
    were (a collision or a code too long), each also logged."""
    left: list[str] = []
    taken_q = sa.text("SELECT promo_code FROM enrollments WHERE promo_code IN :codes") \
        .bindparams(sa.bindparam("codes", expanding=True))
    for rows in _pages(bind, "enrollments", "id"):
        changes = [(i, normal_code(code)) for i, code in rows if normal_code(code) != code]
        if not changes:
            continue
        taken = set(bind.scalars(taken_q, {"codes": [n for _, n in changes]}))
        for enrollment_id, normal in changes:
            if normal in taken or not normal or len(normal) > MAX_PROMO_CODE:
                left.append(enrollment_id)
                continue
            bind.execute(sa.text("UPDATE enrollments SET promo_code = :n WHERE id = :id"),
                         {"n": normal, "id": enrollment_id})
            taken.add(normal)
    for rows in _pages(bind, "conversions", "id"):
        for conversion_id, code in rows:
            normal = normal_code(code)
            if normal != code and normal and len(normal) <= MAX_PROMO_CODE:
                bind.execute(sa.text("UPDATE conversions SET promo_code = :n WHERE id = :id"),
                             {"n": normal, "id": conversion_id})
    if left:
        log.warning("%d promo code(s) left as stored: their normal form is another "
                    "enrollment's code or too long (enrollment ids: %s)", len(left),
                    ", ".join(left[:50]) + (" …" if len(left) > 50 else ""))
    return left


def upgrade() -> None:
    normalise_codes(op.get_bind())


def downgrade() -> None:
    pass
