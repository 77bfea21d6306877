"""Money settings: the cost currency's code and the FX rates a report may use."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from omnicascade.errors import ConfigError

CURRENCY, COST_PLACES = re.compile(r"[A-Z]{3}"), Decimal("1e-6")  # cost: Numeric(12, 6)


def parse_fx_rates(text: str, base: str = "USD") -> dict[str, float]:
    """`EUR=1.08, GBP=1.27` → {"EUR": 1.08, "GBP": 1.27}: what one unit of each currency is
    worth in `base`. Anything else is a ConfigError that names the bad part."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        code, _, value = (x.strip().upper() for x in part.partition("="))
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not CURRENCY.fullmatch(code) or not 0 < rate < math.inf:
            raise ConfigError(f"OMNICASCADE_FX_RATES: {part!r} is not CODE=RATE with a "
                              f"three-letter currency code and a positive number, e.g. "
                              f"EUR=1.08,GBP=1.27 (1 EUR = 1.08 {base})")
        if code in rates:
            raise ConfigError(f"OMNICASCADE_FX_RATES: {code} is given twice")
        rates[code] = rate
    if rates.pop(base, 1.0) != 1.0:
        raise ConfigError(f"OMNICASCADE_FX_RATES: {base} is the cost currency: its rate is 1")
    return rates
