"""A promo code as the shop's checkout asks about it (`GET /v1/promo-codes/{code}`).

A code is **valid** while it can still be redeemed: it was issued (each enrollment of a
campaign with `promo:` gets its own), no conversion has redeemed it yet, and its run is not
stopped. A stopped run takes its codes back, a superseded or completed one does not: the
customer got the code in a message and may still use it. Codes do not expire by time (a
conversion after `conversion.window` is still stored, it just no longer counts for the
run). Codes are matched case-insensitively (in their normal form, validation.normal_code), as
conversions match them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.db.models import ConversionEvent, Enrollment, Run
from omnicascade.errors import NotFound
from omnicascade.reports.run_views import status_of
from omnicascade.validation import MAX_PROMO_CODE, normal_code
from omnicascade.vocabulary import RunStatus


def _discount(run: Run, variant: str) -> str | None:
    spec = (run.snapshot or {}).get("spec") or {}
    v = ((spec.get("experiment") or {}).get("variants") or {}).get(variant) or {}
    promo = v.get("promo") or spec.get("promo") or {}
    discount = promo.get("discount")
    return None if discount is None else str(discount)


def promo_code(code: str, *, session: Session) -> dict[str, Any]:
    """`{code, valid, discount, campaign, customer_id, redeemed}`; NotFound for a code
    nobody was given."""
    wanted = normal_code(code)
    row = session.execute(select(Enrollment.run_id, Enrollment.customer_id, Enrollment.variant,
                                 Enrollment.promo_code)
                          .where(Enrollment.promo_code == wanted)).first() \
        if 0 < len(wanted) <= MAX_PROMO_CODE else None
    run = session.get(Run, row.run_id) if row else None
    if row is None or run is None:
        raise NotFound(f"no promo code {code!r}")
    redeemed = session.scalar(select(ConversionEvent.id)
                              .where(ConversionEvent.promo_code == wanted).limit(1)) is not None
    stopped = status_of(run.id, session=session) == RunStatus.STOPPED
    return {"code": row.promo_code, "valid": not redeemed and not stopped,
            "discount": _discount(run, row.variant), "campaign": run.campaign,
            "customer_id": row.customer_id, "redeemed": redeemed}
