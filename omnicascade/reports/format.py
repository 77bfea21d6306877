"""How every report figure is written for people (the terminal and the HTML page share it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omnicascade.vocabulary import SKIP_LABELS


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with the Z the JSON shapes promise."""
    return value.isoformat() + "Z" if value else None


def pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def num(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def money(v: float | None, cur: str | None) -> str:
    return "–" if v is None else f"{v:,.2f}" + (f" {cur}" if cur else "")


def roi(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+,.0f}%"


def hours(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v * 60:.0f} min" if v < 1 else f"{v:.1f} h" if v < 48 else f"{v / 24:.1f} d"


def reasons(r: dict[str, int], deferred: int = 0, held: int = 0) -> str:
    out = [f"{SKIP_LABELS.get(k, k)} {n}" for k, n in r.items()]  # type: ignore[call-overload]
    out += [f"(deferred by quiet hours: {deferred})"] if deferred else []
    return ", ".join(out + ([f"(held while paused: {held})"] if held else []))
