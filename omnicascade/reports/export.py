"""`omnicascade report RUN_ID --csv DIR`: spreadsheet files.

customers.csv  one row per enrolled customer (no email or phone: customer ids only)
funnel.csv     one row per variant (and `all`) × step
variants.csv   one row per variant: rate, interval, revenue, cost
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from omnicascade.reports.attribution import (
    credited_send,
    hours_since_enrollment,
    hours_since_message,
)
from omnicascade.reports.data import Member, RunData

CUSTOMER_COLUMNS = ["customer_id", "enrollment_id", "variant", "status", "exit_reason",
                    "enrolled_at", "converted", "converted_at", "hours_to_convert",
                    "conversion_event_id", "conversion_type", "amount", "currency",
                    "credited_step", "credited_channel", "hours_since_credited_message",
                    "messages_sent", "cost"]
FUNNEL_COLUMNS = ["variant", "phase", "step", "channel", "reached", "attempted", "sent",
                  "unknown", "failed", "skipped", "skipped_by_reason", "delivered", "opened",
                  "clicked", "bounced", "converted_after", "revenue", "cost",
                  "cost_per_conversion", "roi"]
VARIANT_COLUMNS = ["variant", "enrolled", "converted", "rate", "ci_low", "ci_high",
                   "messages_sent", "revenue", "cost", "cost_per_conversion", "roi",
                   "median_hours_to_convert", "p90_hours_to_convert"]


def _time(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else ""


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{round(value, digits):g}"


def customer_row(m: Member, steps: int) -> dict[str, Any]:
    credited = credited_send(m)
    h = hours_since_enrollment(m)
    row = {"customer_id": m.customer_id, "enrollment_id": m.enrollment_id,
           "variant": m.variant, "status": m.status, "exit_reason": m.exit_reason or "",
           "enrolled_at": _time(m.enrolled_at), "converted": int(m.converted),
           "converted_at": _time(m.converted_at), "hours_to_convert": _num(h),
           "conversion_event_id": m.conversion.event_id if m.conversion else "",
           "conversion_type": m.conversion.type if m.conversion else "",
           "amount": _num(m.conversion.amount, 2) if m.conversion else "",
           "currency": (m.conversion.currency or "") if m.conversion else "",
           "credited_step": credited.index + 1 if credited else "",
           "credited_channel": credited.channel if credited else "",
           "hours_since_credited_message": _num(hours_since_message(m, credited))
           if credited else "",
           "messages_sent": sum(s.went_out for s in m.sends), "cost": _num(m.cost, 6)}
    cascade = {s.index: s for s in m.sends if s.phase == "cascade"}
    for i in range(steps):
        s = cascade.get(i)
        row[f"step_{i + 1}"] = "" if s is None else f"{s.channel}: {s.status}" + (
            f" ({s.reason})" if s.reason and s.status != "sent" else "")
    return row


def write_csv(report: dict[str, Any], data: RunData, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    steps = 1 + max((s.index for m in data.members for s in m.sends if s.phase == "cascade"),
                    default=-1)
    paths = [folder / "customers.csv", folder / "funnel.csv", folder / "variants.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, CUSTOMER_COLUMNS + [f"step_{i + 1}" for i in range(steps)])
        w.writeheader()
        w.writerows(customer_row(m, steps) for m in data.members)
    with paths[1].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, FUNNEL_COLUMNS)
        w.writeheader()
        tables = {"all": report["funnel"]["all"], **report["funnel"]["by_variant"]}
        for variant, rows in tables.items():
            for r in rows:
                w.writerow({**{k: "" if r.get(k) is None else r[k] for k in FUNNEL_COLUMNS
                               if k in r},
                            "variant": variant, "step": r["index"] + 1,
                            "skipped_by_reason": "; ".join(
                                f"{k} {v}" for k, v in r["skipped_by_reason"].items())})
    with paths[2].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, VARIANT_COLUMNS)
        w.writeheader()
        for name, v in report["variants"].items():
            w.writerow({**{k: "" if v.get(k) is None else v[k] for k in VARIANT_COLUMNS
                           if k in v}, "variant": name,
                        "median_hours_to_convert": _num(v["hours_to_convert"]["median"]),
                        "p90_hours_to_convert": _num(v["hours_to_convert"]["p90"])})
    return paths
