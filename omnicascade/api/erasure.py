"""Erasure over HTTP, signed like every write: `DELETE /v1/customers/{id}` (`%2F` for a `/`
in the id) → 200 `{"customer_id", "erased", "cascades_ended", "workflows_deleted", "rows"}`
(`"erased": false` for an unknown or already-erased id: nothing changes). The database half
commits in the transaction that uses the signature up; Temporal is told after
(cascade/erase.py).

And what keeps an erased person out of the other writes: `POST /v1/customers`, trigger
events and conversions naming an erased id (or, for a new customer, an erased address) store
nothing and answer 200 with `"suppressed": "erased"`; `POST /v1/customers` with
`"readmit": true` (only after a new consent) lifts the suppression first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy.orm import Session

from omnicascade.api.http import ApiError, settings_of, signed_json, signed_transaction
from omnicascade.cascade.erase import finish_erasure
from omnicascade.cascade.erasure import (
    ErasureOutcome,
    erase_rows,
    hold,
    identifiers,
    is_erased,
    readmit,
    refused,
    secure,
)
from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.validation import unstorable

router = APIRouter()

SUPPRESSED = "erased"  # the value of `"suppressed"` in an answer


class CustomerWrite(CustomerIn):
    """POST /v1/customers: a customer, and whether to readmit an erased person (only once
    they consented again: the shop's record of that consent is the reason to send it)."""
    readmit: StrictBool = False


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def write_customer(settings: Settings, data: CustomerWrite, *,
                   session: Session) -> tuple[int, bool]:
    """(created, suppressed): an erased id or address is not written unless readmitted."""
    hold(data.id, session=session)
    plain = CustomerIn.model_validate(data.model_dump(exclude_unset=True, exclude={"readmit"}))
    if data.readmit:
        readmit(settings, identifiers(data), session=session)
    elif refused(settings, [plain], session=session):
        return 0, True
    created, _ = upsert_customers([plain], session=session)
    return created, False


def erased_id(settings: Settings, customer_id: str | None, *, session: Session) -> bool:
    """Whether a write naming this customer id must be dropped (held for the transaction,
    so an erasure of the same person is wholly before or wholly after it)."""
    if not customer_id:
        return False
    hold(customer_id, session=session)
    return is_erased(settings, [("id", customer_id)], session=session)


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "`{\"customer_id\", \"erased\", \"cascades_ended\", "
                         "\"workflows_deleted\", \"rows\"}`; `\"erased\": false` for an "
                         "unknown or already-erased id"},
    401: {"description": "missing, wrong or replayed signature"},
    422: {"description": "not a customer id (too long, or text no database can store)"},
}


@router.delete("/v1/customers/{customer_id:path}", tags=["customers"], responses=ANSWERS,
               openapi_extra={"requestBody": {"required": False, "content": {
                   "application/json": {"schema": NoBody.model_json_schema()}}}})
async def erase_customer(customer_id: str, request: Request) -> dict[str, Any]:
    """Erase a customer (GDPR Art. 17): their live cascades end `erased`, their personal
    data is removed from every table (reports keep anonymous counts and money), their
    cascades are deleted from Temporal, and their id and addresses stay suppressed."""
    body = await signed_json(request, NoBody, empty=b"{}")
    problem = unstorable(customer_id)
    if problem or len(customer_id) > 255:
        raise ApiError(422, f"not a customer id: {problem or 'longer than 255 characters'}")
    settings = settings_of(request)

    def work(session: Session) -> ErasureOutcome:
        secure(session)
        return erase_rows(settings, customer_id, "api", session=session)
    outcome = await signed_transaction(request, body, work)  # committed before Temporal
    await finish_erasure(request.app.state.temporal, settings, outcome)
    return outcome.body()
