"""Personalisation helpers for templates: money and dates in the customer's locale (babel),
and the customer's favourite product from their order history."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.core import UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import pass_context
from jinja2.runtime import Context

from omnicascade.config import load_settings


def _locale(ctx: Context) -> str:
    customer = ctx.get("customer") or {}
    return str(customer.get("locale") or "en_US").replace("-", "_")


@pass_context
def money(ctx: Context, amount: Any, currency: str | None = None) -> str:
    """{{ 1234.5 | money("EUR") }} → "1.234,50 €" for de-DE, "€1,234.50" for en-US. With no
    currency: the shop's, OMNICASCADE_COST_CURRENCY (the one default currency)."""
    code = str(currency or load_settings().cost_currency).upper()
    value = amount if isinstance(amount, Decimal) else Decimal(str(float(amount)))
    try:
        return format_currency(value, code, locale=_locale(ctx))
    except (UnknownLocaleError, ValueError):
        return format_currency(value, code, locale="en_US")


@pass_context
def localdate(ctx: Context, value: Any, fmt: str = "medium") -> str:
    """{{ event.expires_at | date }} in the customer's locale; accepts ISO strings."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        if isinstance(value, datetime):
            return format_datetime(value, fmt, locale=_locale(ctx))
        if isinstance(value, date):
            return format_date(value, fmt, locale=_locale(ctx))
    except UnknownLocaleError:
        return str(value)
    return str(value)


FILTERS = {"money": money, "date": localdate}


def favorite_product(orders: list[dict[str, Any] | None]) -> str | None:
    """Most-bought product name across conversions' `data.items` (quantity-weighted);
    ties go to the most recent order's product."""
    counts: Counter[str] = Counter()
    last_seen: dict[str, int] = {}
    for n, data in enumerate(orders):
        for item in (data or {}).get("items") or []:
            if isinstance(item, dict) and item.get("name"):
                name = str(item["name"])
                try:
                    qty = int(item.get("quantity", 1))
                except (TypeError, ValueError):
                    qty = 1
                counts[name] += max(qty, 1)
                last_seen[name] = n
    if not counts:
        return None
    return max(counts, key=lambda k: (counts[k], last_seen[k]))
