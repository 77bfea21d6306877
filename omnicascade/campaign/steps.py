"""The steps of a campaign and when each goes out: the cascade's steps, the follow-ups, and
send-time optimisation (`send_time: best`), as validated data. The campaign as a whole is
`model.py`; the pieces both use (durations, template names) live here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from omnicascade.campaign.durations import format_duration, parse_duration
from omnicascade.vocabulary import Channel, Engagement

Duration = Annotated[int, BeforeValidator(parse_duration),
                     PlainSerializer(format_duration, return_type=str, when_used="json")]
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _plain_name(v: str) -> str:
    """A template is named, never pathed: its files live in the templates folder."""
    if not _TEMPLATE_NAME.match(v):
        raise ValueError(f"{v!r} is not a template name: use letters, digits, '.', '-' and "
                         f"'_' (the files are looked up in the templates folder)")
    return v


TemplateName = Annotated[str, AfterValidator(_plain_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# `send_time`: `best` moves a step's send to the customer's best hour (at most `max_delay`
# after it was due); `scheduled` sends when due (a step's way to opt out of a campaign-wide
# `best`, e.g. in one variant of an experiment).
SendTimeMode = Literal["best", "scheduled"]
SEND_TIME_MODES: tuple[str, ...] = ("best", "scheduled")
DEFAULT_MAX_DELAY_S = 86_400
DEFAULT_MIN_EVENTS = 3
MAX_MIN_EVENTS = 10_000  # more engagements than any customer's history holds


def _min_events(value: object) -> int:
    """`send_time_min_events`: a whole number, 1 to MAX_MIN_EVENTS (not 1e26, not "3")."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 1 <= value <= MAX_MIN_EVENTS:
        raise ValueError(f"must be a whole number from 1 to {MAX_MIN_EVENTS:,}")
    return int(value)


MinEvents = Annotated[int, BeforeValidator(_min_events)]


class Step(_Model):
    channel: Channel
    template: TemplateName
    wait: Duration = 0
    skip_if: list[Engagement] = Field(default_factory=list)  # engaged earlier: skip at once
    send_time: SendTimeMode | None = None  # None: the campaign's
    max_delay: Duration | None = None      # None: the campaign's


class FollowUp(_Model):
    channel: Channel
    template: TemplateName
    delay: Duration = 0


@dataclass(frozen=True)
class SendTimePolicy:
    """A step's send-time optimisation as it applies: move the send to the best hour found
    from at least `min_events` engagements, never more than `max_delay_s` after it was due."""
    max_delay_s: int = DEFAULT_MAX_DELAY_S
    min_events: int = DEFAULT_MIN_EVENTS


def send_time_policy(step: Step, campaign_mode: SendTimeMode, campaign_max_delay: int,
                     min_events: int) -> SendTimePolicy | None:
    """The step's own `send_time`/`max_delay` over the campaign's; None: sent when due."""
    if (step.send_time or campaign_mode) != "best":
        return None
    delay = step.max_delay if step.max_delay is not None else campaign_max_delay
    return SendTimePolicy(delay, min_events)


CAP_MAX_DELAY_S = 30 * 86_400  # a capped send held longer than a month is not a reminder


class FrequencyCap(_Model):
    """At most `max` messages per `per`. A capped send waits (`defer`, at most `max_delay`,
    default `per`) until the window admits it, or is skipped at once (`skip`)."""
    max: int = Field(ge=1)
    per: Duration
    channels: list[Channel] | None = None
    on_cap: Literal["defer", "skip"] = "defer"
    max_delay: Duration | None = None

    @field_validator("max_delay")
    @classmethod
    def _max_delay(cls, v: int | None) -> int | None:
        if v is not None and v > CAP_MAX_DELAY_S:
            raise ValueError("frequency_cap.max_delay must be at most 30d")
        return v

    @property
    def max_delay_s(self) -> int:
        return self.per if self.max_delay is None else self.max_delay
