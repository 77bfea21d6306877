"""`experiment.winner` and `experiment.allocation` as validated data: when an experiment
decides by itself (experiments/ holds the statistics, cascade/winner.py runs them). Kept
beside model.py, which builds `Experiment` from these pieces."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer

from omnicascade.campaign.steps import Duration, _Model
from omnicascade.vocabulary import WinnerMetric

DEFAULT_MIN_PER_VARIANT = 200
DEFAULT_UPDATE_EVERY_S = 3600


def _fraction(value: object) -> float:
    """95% → 0.95; 0.95 stays 0.95 (a confidence is a probability)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            value = None
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
        value = float(value) / 100
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError("must be a percentage above 0% and below 100%, e.g. 95%")
    return float(value)


Fraction = Annotated[float, BeforeValidator(_fraction),
                     PlainSerializer(lambda v: f"{round(v * 100, 6)}%", return_type=str,
                                     when_used="json")]


class Winner(_Model):
    """Decide a winner on customers whose conversion window has closed, with a test that
    stays valid however often it is checked; later entrants get the winner."""
    metric: WinnerMetric = WinnerMetric.CONVERSION_RATE
    confidence: Fraction = 0.95
    min_per_variant: int = Field(default=DEFAULT_MIN_PER_VARIANT, ge=1)
    max_duration: Duration | None = None  # then nothing is declared; the split continues


Allocation = Literal["fixed", "bandit"]
