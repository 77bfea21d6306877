"""Median and 90th percentile of durations, in the standard library: the funnel, `runs show`
and the customer views need them, and must not load numpy/scipy (≈ 100 MB per worker and
API process) to get them; the statistics proper live in stats.py."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _at(ordered: list[float], q: float) -> float:
    """numpy's default percentile: linear interpolation between closest ranks."""
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Median and 90th percentile (linear interpolation, numpy's default)."""
    ordered = sorted(float(v) for v in values if math.isfinite(float(v)))
    if not ordered:
        return {"median": None, "p90": None}
    return {"median": round(_at(ordered, 0.5), 4), "p90": round(_at(ordered, 0.9), 4)}
