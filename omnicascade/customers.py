"""Customers: the upsert model shared by the API and CSV/JSONL import, and the importer.

Import is all-or-nothing: every row is validated first and problems are reported by line
number; only a file with no problems is written, in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.db.models import ConversionEvent, Customer, utcnow
from omnicascade.errors import UserFacingError
from omnicascade.validation import storable, time_zone

# The customer column that holds each channel's address.
ADDRESS_FIELD = {"email": "email", "sms": "phone", "telegram": "telegram_chat_id",
                 "push": "push_token"}
CORE_FIELDS = ("id", "email", "phone", "telegram_chat_id", "push_token", "timezone", "locale")


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _storable = field_validator("*")(storable)  # what PostgreSQL can store, too

    id: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    push_token: str | None = Field(default=None, max_length=4096)
    timezone: str | None = None
    locale: str | None = Field(default=None, max_length=35)
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Per-channel consent, e.g. {"sms": false}. CSV: consent_email, consent_sms, … columns.
    consents: dict[Literal["email", "sms", "telegram", "push"], bool] | None = None

    @field_validator("email", "phone", "telegram_chat_id", "push_token", "timezone", "locale",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and ("@" not in v or v.startswith("@") or v.endswith("@") or " " in v):
            raise ValueError(f"{v!r} is not an email address")
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None:
            digits = v.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
            if not (digits.startswith("+") and digits[1:].isdigit() and 8 <= len(digits) <= 16):
                raise ValueError(f"{v!r} is not a phone number in international format "
                                 f"(e.g. +4915112345678)")
            return digits
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return time_zone(v)


@dataclass
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ImportError_(UserFacingError):
    def __init__(self, path: str, problems: list[RowProblem]):
        self.problems = problems
        shown = "\n".join(f"{path}:{'' if p.line else ' '}{p}" for p in problems[:50])
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{shown}{more}\nnothing was imported")


def _row_model(raw: dict[str, Any]) -> CustomerIn:
    # A blank cell means "no value given", not "erase what we have".
    data = {k: v for k, v in raw.items() if k in CORE_FIELDS and v not in (None, "")}
    if "id" not in data and "customer_id" in raw:
        data["id"] = raw["customer_id"]
    attrs = dict(raw.get("attributes") or {}) if isinstance(raw.get("attributes"), dict) else {}
    for key, value in raw.items():
        if key in CORE_FIELDS or key in ("attributes", "customer_id", "consents") \
                or key.startswith("consent_"):
            continue
        if value in (None, ""):
            continue
        attrs[key] = value
    consents = dict(raw["consents"]) if isinstance(raw.get("consents"), dict) else {}
    for channel in ("email", "sms", "telegram", "push"):
        value = raw.get(f"consent_{channel}")
        if value not in (None, ""):
            consents[channel] = _yes_no(value, f"consent_{channel}")
    if consents:
        data["consents"] = consents
    data["attributes"] = attrs
    return CustomerIn.model_validate(data)


def _yes_no(value: Any, name: str) -> Any:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "opt-in", "granted"):
        return True
    if text in ("0", "false", "no", "n", "opt-out", "denied"):
        return False
    return value  # pydantic names it: "consents.sms: Input should be a valid boolean"


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "row"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {'missing' if e['type'] == 'missing' else msg}")
    return "; ".join(parts)


def parse_customer_file(path: Path) -> list[CustomerIn]:
    """Read a .csv or .jsonl file of customers; raise ImportError_ naming every bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportError_(str(path), [RowProblem(0, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportError_(str(path), [RowProblem(0, f"cannot read: {exc}")]) from None
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[RowProblem] = []
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        header = {f.strip() for f in reader.fieldnames or () if f}  # rows are stripped too
        if not ({"id", "customer_id"} & header):
            raise ImportError_(str(path), [RowProblem(1, "the header needs an 'id' column")])
        for row in reader:
            if None in row:
                problems.append(RowProblem(reader.line_num, "more values than header columns"))
                continue
            rows.append((reader.line_num, {k.strip(): v for k, v in row.items() if k}))
    elif suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(RowProblem(n, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            except RecursionError:
                problems.append(RowProblem(n, "invalid JSON: nested too deeply"))
                continue
            if not isinstance(obj, dict):
                problems.append(RowProblem(n, "each line must be a JSON object"))
                continue
            rows.append((n, obj))
    else:
        raise ImportError_(str(path), [RowProblem(0, "use a .csv or .jsonl file")])
    customers: list[CustomerIn] = []
    seen: dict[str, int] = {}
    for line_no, raw in rows:
        try:
            c = _row_model(raw)
        except ValidationError as exc:
            problems.append(RowProblem(line_no, _explain(exc)))
            continue
        if c.id in seen:
            problems.append(RowProblem(line_no,
                                       f"customer {c.id!r} already on line {seen[c.id]}"))
            continue
        seen[c.id] = line_no
        customers.append(c)
    if problems:
        raise ImportError_(str(path), problems)
    return customers


def upsert_customers(customers: list[CustomerIn], *, session: Session) -> tuple[int, int]:
    """Insert new customers, update given fields of existing ones. Returns (created, updated)."""
    created = updated = 0
    now = utcnow()
    for start in range(0, len(customers), 500):
        batch = customers[start:start + 500]
        existing = {c.id: c for c in session.scalars(
            select(Customer).where(Customer.id.in_([c.id for c in batch])))}
        for c in batch:
            fields = c.model_dump(exclude_unset=True, exclude={"id", "attributes", "consents"})
            row = existing.get(c.id)
            if row is None:
                session.add(Customer(id=c.id, attributes=dict(c.attributes), created_at=now,
                                     updated_at=now, consents=dict(c.consents or {}),
                                     **fields))
                created += 1
            else:
                for key, value in fields.items():
                    setattr(row, key, value)
                if c.attributes:
                    row.attributes = {**(row.attributes or {}), **c.attributes}
                if c.consents:
                    row.consents = {**(row.consents or {}), **cast(dict[str, Any], c.consents)}
                row.updated_at = now
                updated += 1
        session.flush()
    return created, updated


def customer_dict(row: Customer) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "phone": row.phone,
            "telegram_chat_id": row.telegram_chat_id, "push_token": row.push_token,
            "timezone": row.timezone, "locale": row.locale,
            "attributes": dict(row.attributes or {}), "consents": dict(row.consents or {})}


def customer_orders(customer_id: str, *, session: Session) -> list[dict[str, Any] | None]:
    """The `data` of every conversion of this customer, oldest first (order history)."""
    return list(session.scalars(select(ConversionEvent.data).where(
        ConversionEvent.customer_id == customer_id).order_by(ConversionEvent.occurred_at)))
