"""A/B comparisons between variants and the lift of the cascade over the holdout."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from omnicascade.reports.data import Member
from omnicascade.reports.money import ZERO, Currencies, in_one_currency, number, revenue_of
from omnicascade.reports.stats import ALPHA, POWER, compare, holm, rate_ci, relative_lift, verdict
from omnicascade.vocabulary import DEFAULT_VARIANT, HOLDOUT, holdout_note

CENT = Decimal("0.01")


def _counts(members: list[Member]) -> tuple[int, int]:
    return sum(m.converted for m in members), len(members)


def pick_baseline(names: list[str]) -> str:
    """`control` (or `default`) if there is one, else the first variant as written."""
    for preferred in ("control", DEFAULT_VARIANT):
        if preferred in names:
            return preferred
    return names[0]


def ab_tests(groups: dict[str, list[Member]], alpha: float = ALPHA) -> dict[str, Any] | None:
    """Every variant against the baseline, two-sided; Holm-adjusted when there are more
    than two variants. None when there is nothing to compare."""
    names = [n for n in groups if n != HOLDOUT and groups[n]]
    if len(names) < 2:
        return None
    base = pick_baseline(names)
    x_a, n_a = _counts(groups[base])
    rows = []
    for name in names:
        if name == base:
            continue
        x_b, n_b = _counts(groups[name])
        rows.append({"variant": name, "baseline": base, **compare(x_a, n_a, x_b, n_b, alpha),
                     "_counts": (x_b, n_b)})
    adjusted = holm([r["p_value"] for r in rows], alpha) if len(rows) > 1 else \
        [r["p_value"] for r in rows]
    for r, p_adj in zip(rows, adjusted, strict=True):
        x_b, n_b = r.pop("_counts")
        r["p_value_adjusted"] = p_adj
        r.update(verdict(base, r["variant"], r, n_a, n_b, x_a, x_b, alpha, p_value=p_adj))
    return {"baseline": base, "alpha": alpha, "power": POWER,
            "adjustment": "holm" if len(rows) > 1 else None, "comparisons": rows}


def _incremental(treated: list[Member], holdout: list[Member], diff: float,
                 cur: Currencies) -> dict[str, Any]:
    """Extra conversions and revenue of the treated over the holdout's rate, and what each
    extra conversion cost (the cascade's messages; follow-ups are not the cascade's).
    Revenue needs both groups' amounts known and in one currency (or rates to the cost
    currency); ROI needs that currency to be the cost currency."""
    n_t, n_h = len(treated), len(holdout)
    cost = sum((m.cost for m in treated), ZERO)
    inc_conv = diff * n_t  # an estimate (a rate × a count): a float, not money
    same = in_one_currency([revenue_of(treated, cur), revenue_of(holdout, cur)], cur)
    inc_rev, code = None, None
    if same is not None:
        (t, h), code = same
        inc_rev = (t / n_t - h / n_h) * n_t
    return {"incremental_conversions": round(inc_conv, 2),
            "incremental_revenue": number(inc_rev, 2), "incremental_revenue_currency": code,
            "cost": number(cost, 4), "cost_currency": cur.cost,
            "cost_per_incremental_conversion": round(float(cost) / inc_conv, 4)
            if inc_conv > 0 else None,
            "incremental_roi": number((inc_rev.quantize(CENT, ROUND_HALF_UP) - cost) / cost, 4)
            if inc_rev is not None and code == cur.cost and cost > 0 else None}


def _lift(treated: list[Member], holdout: list[Member], label: str,
          alpha: float, cur: Currencies) -> dict[str, Any]:
    x_t, n_t = _counts(treated)
    x_h, n_h = _counts(holdout)
    absolute = compare(x_h, n_h, x_t, n_t, alpha)
    relative = relative_lift(x_t, n_t, x_h, n_h, alpha)
    words = verdict(HOLDOUT, label, absolute, n_h, n_t, x_h, x_t, alpha, unit="group")
    if relative["lift"] is not None and absolute["diff"] is not None:
        words["text"] += f" (relative lift {relative['lift']:+.0%})"
    out = {"treated": rate_ci(x_t, n_t, alpha), "absolute": absolute, "relative": relative,
           **words}
    if absolute["diff"] is not None:
        out.update(_incremental(treated, holdout, absolute["diff"], cur))
    return out


def holdout_lift(groups: dict[str, list[Member]], alpha: float = ALPHA,
                 cur: Currencies | None = None) -> dict[str, Any] | None:
    """How much better the cascade converts than doing nothing, and whether what it earns
    on top covers what it costs. None without a holdout."""
    holdout = groups.get(HOLDOUT) or []
    if not holdout:
        return None
    treated_groups = {n: ms for n, ms in groups.items() if n != HOLDOUT and ms}
    treated = [m for ms in treated_groups.values() for m in ms]
    x_h, n_h = _counts(holdout)
    cur = cur or Currencies()
    out = {"holdout": rate_ci(x_h, n_h, alpha),
           **_lift(treated, holdout, "cascade", alpha, cur)}
    out["by_variant"] = {n: _lift(ms, holdout, n, alpha, cur)
                         for n, ms in treated_groups.items()}
    return out


def lift_note(groups: dict[str, list[Member]], spec: dict[str, Any]) -> str | None:
    """Why a campaign with a holdout has no lift: the hash left the holdout empty, e.g.
    "holdout of 0 customers (10% of 14)". None when there is a lift or no holdout asked."""
    raw = str((spec.get("experiment") or {}).get("holdout") or "0").rstrip("% ")
    percent = float(raw) if raw.replace(".", "", 1).isdigit() else 0.0
    if not percent or groups.get(HOLDOUT):
        return None
    return holdout_note(percent, 0, sum(len(ms) for ms in groups.values()))
