"""How every report figure is written for people (the terminal and the HTML page share it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omnicascade.vocabulary import HOLDOUT, reason_label


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with the Z the JSON shapes promise."""
    return value.isoformat() + "Z" if value else None


def pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def num(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def money(v: float | None, cur: str | None) -> str:
    """`1,234.50 EUR`; an amount under 1 keeps up to 4 decimals (a message costs 0.001)."""
    if v is None:
        return "–"
    text = f"{v:,.2f}" if v == 0 or abs(v) >= 0.995 else f"{v:.4f}".rstrip("0")
    if text.endswith(".") or len(text.split(".")[-1]) < 2:
        text = f"{v:.2f}"
    return text + (f" {cur}" if cur else "")


def roi(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+,.0f}%"


def hours(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v * 60:.0f} min" if v < 1 else f"{v:.1f} h" if v < 48 else f"{v / 24:.1f} d"


def reasons(r: dict[str, int], deferred: int = 0, held: int = 0, timed: int = 0,
            capped: int = 0) -> str:
    """Skip reasons by their human label, then what goes out later:
    `no address 2, no consent 1, (deferred by quiet hours: 3)`."""
    out = [f"{reason_label(k)} {n}" for k, n in r.items()]
    out += [f"(deferred by quiet hours: {deferred})"] if deferred else []
    out += [f"(deferred by cap: {capped})"] if capped else []
    out += [f"(waiting for the best send time: {timed})"] if timed else []
    return ", ".join(out + ([f"(held while paused: {held})"] if held else []))


def revenue(r: dict[str, Any]) -> str:
    """A row's revenue with its currency: `180.00 EUR`, `100.00 USD + 280.00 EUR` (never
    added up), `–` when unknown; conversions without an amount are said, not counted as 0."""
    by = r.get("revenue_by_currency") or {}
    missing = r.get("conversions_without_amount") or 0
    if by:
        text = " + ".join(money(a, c) for c, a in by.items())
    elif r.get("revenue") is not None:
        text = money(r["revenue"], r.get("revenue_currency"))
    else:
        text = "–"
    return text + (f" · {missing} without amount" if missing else "")


def total(r: dict[str, Any]) -> str:
    """`≈ 402.40 USD` when the revenue is in other currencies than the cost currency and the
    configured rates turn it into one total; "" otherwise."""
    by, cost = r.get("revenue_by_currency") or {}, r.get("cost_currency")
    if r.get("revenue_total") is None or not by or set(by) == {cost}:
        return ""
    return f"≈ {money(r['revenue_total'], cost)}"


def cost(v: float | None, r: dict[str, Any]) -> str:
    """A cost figure of row `r`, in its cost currency."""
    return money(v, r.get("cost_currency"))


def step(r: dict[str, Any]) -> str:
    """`step 1`, `after 1`: the label the report rows carry."""
    return str(r.get("label") or r["index"] + 1)


def has_variants(r: dict[str, Any]) -> bool:
    """More than one variant gets messages: every per-step table gets a variant column."""
    return sum(n != HOLDOUT for n in r["variants"]) > 1


def rehearsal(r: dict[str, Any]) -> str:
    """The line every view of a rehearsal shows; "" for a live run."""
    x = r.get("rehearsal")
    if not x:
        return ""
    return (f"{x['label']}: every time and duration here is campaign time (the run's clock "
            f"runs {x['scale']:g}× faster than the wall clock since its launch)")


def after_conversion(eco: dict[str, Any]) -> str:
    """The follow-ups' own cost line, outside the cascade's ROI; "" without any."""
    a = eco["after_conversion"]
    if not a["messages"] and not a["cost"]:
        return ""
    return (f"after conversion: {num(a['messages'])} messages, cost "
            f"{money(a['cost'], a['cost_currency'])} (follow-ups after the sale: not in the "
            f"cascade's cost per conversion or ROI)")


def saved_by_engagement(eco: dict[str, Any]) -> str:
    """What `skip_if` saved; "" when it skipped nothing."""
    a = eco.get("saved_by_engagement") or {}
    if not a.get("messages"):
        return ""
    return (f"saved by engagement: {num(a['messages'])} messages not sent (the customer had "
            f"engaged with an earlier one: skip_if), {money(a['cost'], a['cost_currency'])} "
            f"not spent")


def incremental_revenue(lift: dict[str, Any]) -> str:
    """`812.40 EUR extra revenue`, or why it is unknown."""
    if lift.get("incremental_revenue") is not None:
        return f"{money(lift['incremental_revenue'], lift['incremental_revenue_currency'])} " \
               "extra revenue"
    return ("no known extra revenue (amounts missing, or in currencies without a rate: "
            "see the notes)")
