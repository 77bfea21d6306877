"""Money in a report is never mixed. Message costs are in one currency, the shop's
(OMNICASCADE_COST_CURRENCY); revenue is in whatever currency each conversion reported.
Amounts in different currencies are added up only through rates from configuration
(OMNICASCADE_FX_RATES), and the report states the rates it used. A conversion without an
amount has unknown revenue, not 0: it is counted, and every ROI it belongs to is unknown.
ROI is (revenue − cost) / cost, so it needs its revenue all known and in the cost currency
(natively or by a configured rate); otherwise it is None and the views show "–".

Each money figure of the report's JSON carries its currency:
  cost, cost_currency                    what the messages cost
  revenue, revenue_currency              the revenue when it is in one currency (else None)
  revenue_by_currency                    {currency: revenue}, always
  revenue_total                          all of it in cost_currency (None: a rate is missing)
  conversions_without_amount             conversions whose revenue is unknown
  cost_per_conversion, roi               in cost_currency; None where undefined

Money is computed in Decimal (stored as Numeric: a thousand 0.001 costs are exactly 1) and
leaves it only as a JSON number, through `number` (rounded half up to the places shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

ZERO = Decimal(0)


def number(amount: Decimal | None, places: int) -> float | None:
    """The one edge where money leaves Decimal: a JSON number rounded half up to `places`
    (the exact decimal is rounded, then the nearest float of that is what JSON carries)."""
    if amount is None:
        return None
    return float(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


class Converting(Protocol):
    @property
    def converted(self) -> bool: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def currency(self) -> str | None: ...


@dataclass(frozen=True)
class Currencies:
    cost: str = "USD"                                   # the currency costs are in
    rates: Mapping[str, float] = field(default_factory=dict)  # 1 unit = rate × cost

    def of(self, currency: str | None) -> str:
        """A conversion's currency; an amount sent without one is in the shop's currency."""
        return (currency or self.cost).upper()

    def rate(self, currency: str) -> float | None:
        return 1.0 if currency == self.cost else self.rates.get(currency)

    def exact_rate(self, currency: str) -> Decimal | None:
        """The rate as the decimal it was configured as (1.08, not 1.0800000000000000711)."""
        rate = self.rate(currency)
        return None if rate is None else Decimal(repr(rate))

    def in_cost(self, by_currency: Mapping[str, Decimal]) -> Decimal | None:
        """The amounts in the cost currency; None when a currency has no rate."""
        total = ZERO
        for currency, amount in by_currency.items():
            rate = self.exact_rate(currency)
            if rate is None:
                return None
            total += amount * rate
        return total

    def used(self, currencies: Iterable[str]) -> dict[str, float]:
        """The configured rates these currencies need, to state them in the report."""
        return {c: self.rates[c] for c in sorted(set(currencies)) if c in self.rates}


@dataclass
class Revenue:
    """Conversions and what they were worth, per currency."""
    by_currency: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # conversions with an amount
    conversions: int = 0
    without_amount: int = 0

    def add(self, amount: Decimal | None, currency: str) -> None:
        self.conversions += 1
        if amount is None:
            self.without_amount += 1
        else:
            self.by_currency[currency] = self.by_currency.get(currency, ZERO) + amount
            self.counts[currency] = self.counts.get(currency, 0) + 1

    def known(self) -> bool:
        """Every conversion's amount is known."""
        return not self.without_amount


def in_one_currency(revs: list[Revenue], cur: Currencies
                    ) -> tuple[list[Decimal], str] | None:
    """Each revenue as one amount, all in one currency: their own when they share one (the
    cost currency when there is none), else the cost currency by the configured rates.
    None when an amount is missing or a rate is."""
    if not all(r.known() for r in revs):
        return None
    codes = {c for r in revs for c in r.by_currency}
    if len(codes) <= 1:
        code = next(iter(codes), cur.cost)
        return [r.by_currency.get(code, ZERO) for r in revs], code
    totals = [cur.in_cost(r.by_currency) for r in revs]
    if any(t is None for t in totals):
        return None
    return [t for t in totals if t is not None], cur.cost


def revenue_of(members: Iterable[Converting], cur: Currencies) -> Revenue:
    rev = Revenue()
    for m in members:
        if m.converted:
            rev.add(m.amount, cur.of(m.currency))
    return rev


def revenue_fields(rev: Revenue, cur: Currencies) -> dict[str, Any]:
    by = {c: number(a, 2) for c, a in sorted(rev.by_currency.items())}
    revenue: float | None = None
    code: str | None = None
    if len(by) == 1:
        [(code, revenue)] = by.items()
    elif not by and rev.known():  # no conversions: nothing earned, in any currency
        revenue, code = 0.0, cur.cost
    return {"revenue": revenue, "revenue_currency": code, "revenue_by_currency": by,
            "revenue_total": number(cur.in_cost(rev.by_currency), 2),
            "conversions_without_amount": rev.without_amount}


def roi(cost: Decimal, rev: Revenue, cur: Currencies) -> float | None:
    """(revenue − cost) / cost, where the revenue is all known and in the cost currency."""
    total = cur.in_cost(rev.by_currency)
    if cost <= 0 or total is None or not rev.known():
        return None
    return number((total - cost) / cost, 4)


def money(cost: Decimal, rev: Revenue, cur: Currencies) -> dict[str, Any]:
    """The money figures of one row: cost, revenue, cost per conversion, ROI."""
    return {"cost": number(cost, 4), "cost_currency": cur.cost, **revenue_fields(rev, cur),
            "cost_per_conversion": number(cost / rev.conversions, 4) if rev.conversions
            else None, "roi": roi(cost, rev, cur)}


def cost_only(cost: Decimal, cur: Currencies) -> dict[str, Any]:
    """A row that buys no conversions (a follow-up after the sale): its cost, nothing else."""
    return {"cost": number(cost, 4), "cost_currency": cur.cost, "revenue": None,
            "revenue_currency": None, "revenue_by_currency": {}, "revenue_total": None,
            "conversions_without_amount": 0, "cost_per_conversion": None, "roi": None}


def by_currency(rev: Revenue, cur: Currencies) -> dict[str, dict[str, Any]]:
    """`economics.by_currency`: per currency, the conversions with an amount in it, their
    revenue, and (with a configured rate) that revenue in the cost currency."""
    out = {}
    for c, amount in sorted(rev.by_currency.items()):
        rate = cur.exact_rate(c)
        out[c] = {"conversions": rev.counts[c], "revenue": number(amount, 2),
                  "rate": cur.rate(c) if c != cur.cost else None,
                  "in_cost_currency": None if rate is None else number(amount * rate, 2)}
    return out
