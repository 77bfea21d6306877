"""Customer files (CSV with a header, or JSON lines) → validated CustomerIn rows.

All-or-nothing: every row is validated first and problems are reported by line number;
only a file with no problems is written, in one transaction. A blank cell means "no value
given", never "erase what we have".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from omnicascade.customers.model import CORE_FIELDS, CustomerIn
from omnicascade.errors import UserFacingError
from omnicascade.vocabulary import CHANNELS


@dataclass
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class CustomerFileError(UserFacingError):
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
    for channel in CHANNELS:
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
    """Read a .csv or .jsonl file of customers; raise CustomerFileError naming every bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CustomerFileError(str(path), [RowProblem(0, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CustomerFileError(str(path), [RowProblem(0, f"cannot read: {exc}")]) from None
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[RowProblem] = []
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        header = {f.strip() for f in reader.fieldnames or () if f}  # rows are stripped too
        if not ({"id", "customer_id"} & header):
            raise CustomerFileError(str(path), [RowProblem(1, "the header needs an 'id' column")])
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
        raise CustomerFileError(str(path), [RowProblem(0, "use a .csv or .jsonl file")])
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
        raise CustomerFileError(str(path), problems)
    return customers
