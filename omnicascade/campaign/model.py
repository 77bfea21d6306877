"""The campaign as validated data: pydantic models of the YAML (docs/architecture.md §4).
Loading the file and reporting problems by line and column is `load.py`; this module is
the shape."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from omnicascade.campaign.codes import pattern_problem
from omnicascade.campaign.durations import parse_duration
from omnicascade.campaign.experiment_rules import DEFAULT_UPDATE_EVERY_S, Allocation, Winner
from omnicascade.campaign.steps import (
    DEFAULT_MAX_DELAY_S,
    DEFAULT_MIN_EVENTS,
    Duration,
    FollowUp,
    FrequencyCap,
    MinEvents,
    SendTimeMode,
    SendTimePolicy,
    Step,
    _Model,
    send_time_policy,
)
from omnicascade.validation import time_zone
from omnicascade.vocabulary import DEFAULT_VARIANT, HOLDOUT

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # ASCII digits, as durations
def _inside(v: str | None) -> str | None:
    """templates_dir is a folder inside the campaign's folder, written relative to it."""
    if v is not None and (v.startswith(("/", "\\", "~")) or ":" in v
                          or ".." in re.split(r"[/\\]", v)):
        raise ValueError(f"{v!r} is not inside the campaign's folder: write a relative path "
                         f"without '..', e.g. templates")
    return v


def _percent(value: object) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = float(value.strip()[:-1])
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        value = float(value) * 100
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a percentage; write e.g. 10%")
    return float(value)


# Serialised as "10.0%", not 10.0: a bare number below 1 reads back as a fraction
# (0.5 → 50%), so a snapshot of `holdout: 0.5%` would otherwise come back as 50%.
Percent = Annotated[float, BeforeValidator(_percent),
                    PlainSerializer(lambda v: f"{v}%", return_type=str, when_used="json")]


_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _data_field(v: str | None) -> str | None:
    if v is not None and not _FIELD.match(v):
        raise ValueError(f"{v!r} is not a field name of the event's data (letters, digits "
                         f"and _, e.g. cart_id)")
    return v


def _reentry(v: object) -> str:
    """after_exit | never | a duration such as 7d (kept as written, checked here)."""
    text = str(v).strip()
    if text in ("after_exit", "never"):
        return text
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(f"{text!r}: reentry is after_exit, never, or a duration such as 7d "
                         f"(the least time between two entries)")
    return text


def _json_like(value: object, where: str) -> object:
    """Sample event data as the API would deliver it: JSON values only (a YAML date is
    written as its ISO text, as a shop's backend would send it)."""
    if isinstance(value, dict):
        return {str(k): _json_like(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_json_like(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (date, time)):
        return value.isoformat()
    if value is None or isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return value if value is None else bool(value)  # ruamel's anchored `&a true` is an int
    for kind in (str, int, float):  # ruamel's scalar subclasses as the plain types
        if isinstance(value, kind):
            return kind(value)
    raise ValueError(f"{where} is not JSON data ({type(value).__name__})")


def _example(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of the trigger event's data fields, e.g. "
                         "{currency: EUR, products: [{name: Tent, price: 240}]}")
    return _json_like(value, "example")


class Trigger(_Model):
    event: str = Field(min_length=1)
    # a field of the event's data: each distinct value is its own entry (e.g. a cart)
    key: Annotated[str | None, AfterValidator(_data_field)] = None
    # sample `data` of a trigger event: validate checks templates against it, preview
    # renders with it; never sent to anyone
    example: Annotated[dict[str, Any] | None, BeforeValidator(_example)] = None

    @model_validator(mode="after")
    def _example_has_the_key(self) -> Trigger:
        if self.example is not None and self.key and self.key not in self.example:
            raise ValueError(f"example has no '{self.key}' (trigger.key): an event without "
                             f"it enrolls nobody, so add it to the example")
        return self


DEFAULT_CONVERSION_WINDOW_S = 7 * 86_400  # a week after the cascade's last step


class Conversion(_Model):
    events: list[str] = Field(min_length=1)
    lookback: Duration = 0
    # customer: any conversion stops all the customer's cascades in the campaign;
    # key: only the cascade whose trigger key equals the conversion's data.<key>
    match: Literal["customer", "key"] = "customer"
    # How long after the cascade's last step a conversion still counts for the run
    # (None: the default, DEFAULT_CONVERSION_WINDOW_S).
    window: Duration | None = None


class Exit(_Model):
    events: list[str] = Field(min_length=1)  # end the cascade, not counted as a conversion


class Promo(_Model):
    pattern: str
    discount: str | None = None

    @field_validator("pattern")
    @classmethod
    def _makes_codes(cls, v: str) -> str:  # any case: codes come out in their normal form
        problem = pattern_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class QuietHours(_Model):
    start: str
    end: str
    mode: Literal["defer", "skip"] = "defer"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not _CLOCK.match(str(v)):
            raise ValueError(f"{v!r} is not a time of day; write HH:MM, e.g. 21:00")
        return v


Order = Literal["as_written", "cost", "preference"]


class Variant(_Model):
    weight: float = Field(ge=0)
    steps: list[Step] | None = Field(default=None, min_length=1)
    promo: Promo | None = None
    order: Order | None = None


class Experiment(_Model):
    holdout: Percent = 0.0
    variants: dict[str, Variant] = Field(min_length=1)
    winner: Winner | None = None  # decide by itself (campaign/experiment_rules.py)
    allocation: Allocation = "fixed"  # bandit: Thompson sampling moves the shares
    floor: Percent = 10.0  # a bandit's least share per variant
    update_every: Duration = DEFAULT_UPDATE_EVERY_S

    @model_validator(mode="after")
    def _weights(self) -> Experiment:
        if not 0 <= self.holdout < 100:
            raise ValueError("holdout must be at least 0% and below 100%")
        if self.winner and len(self.variants) < 2:
            raise ValueError("winner needs at least two variants to choose from")
        if self.allocation == "bandit" and (len(self.variants) < 2 or self.update_every < 60
                                            or self.floor * len(self.variants) > 100):
            raise ValueError("allocation: bandit needs two variants or more, update_every of "
                             "at least 1m, and floor × variants at most 100%")
        total = sum(v.weight for v in self.variants.values())
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant weights must add up to 100 (they add up to {total:g})")
        for name in self.variants:
            if name in (HOLDOUT, DEFAULT_VARIANT) or not SLUG.match(name):
                raise ValueError(f"variant name {name!r} is not allowed: use lowercase letters, "
                                 f"digits, - and _ (and not 'holdout' or 'default')")
        return self


class CampaignSpec(_Model):
    campaign: str
    description: str = ""
    trigger: Trigger | None = None
    reentry: Annotated[str, BeforeValidator(_reentry)] = "after_exit"
    conversion: Conversion | None = None
    exit: Exit | None = None
    promo: Promo | None = None
    steps: list[Step] = Field(min_length=1)
    after_conversion: list[FollowUp] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    experiment: Experiment | None = None
    order: Order = "as_written"
    timezone: str | None = None
    # send-time optimisation for every cascade step (a step's own `send_time` wins)
    send_time: SendTimeMode = "scheduled"
    max_delay: Duration = DEFAULT_MAX_DELAY_S
    send_time_min_events: MinEvents = DEFAULT_MIN_EVENTS
    templates_dir: Annotated[str | None, AfterValidator(_inside)] = None
    # receipts and the like: sent to the global control group too (OMNICASCADE_GLOBAL_CONTROL)
    transactional: bool = False

    @field_validator("campaign")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"{v!r} is not a slug: use lowercase letters, digits, - and _")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return time_zone(v)

    @model_validator(mode="after")
    def _keyed_match_needs_a_key(self) -> CampaignSpec:
        if self.conversion and self.conversion.match == "key" and not (
                self.trigger and self.trigger.key):
            raise ValueError("conversion.match: key needs trigger.key (the event data field "
                             "that tells one entry from another, e.g. cart_id)")
        return self

    def send_time_for(self, step: Step) -> SendTimePolicy | None:
        """The send-time optimisation of a cascade step (None: sent when due)."""
        return send_time_policy(step, self.send_time, self.max_delay,
                                self.send_time_min_events)

    @property
    def reentry_s(self) -> int | None:
        """The least seconds between two entries, for a duration; None otherwise."""
        return None if self.reentry in ("after_exit", "never") else parse_duration(self.reentry)

    @property
    def entry_field(self) -> str | None:
        return self.trigger.key if self.trigger else None

    @property
    def match_key(self) -> str | None:
        """The data field a conversion must match, when `conversion.match: key`."""
        return self.entry_field if self.conversion and self.conversion.match == "key" else None

    @property
    def exit_events(self) -> list[str]:
        return list(self.exit.events) if self.exit else []

    @property
    def conversion_events(self) -> list[str]:
        return list(self.conversion.events) if self.conversion else []

    @property
    def lookback_s(self) -> int:
        return self.conversion.lookback if self.conversion else 0

    @property
    def conversion_window_s(self) -> int:
        window = self.conversion.window if self.conversion else None
        return DEFAULT_CONVERSION_WINDOW_S if window is None else window
