"""Workflow and activity inputs/outputs: plain dataclasses, durations as data (seconds),
and the names by which the world outside talks to a cascade (cascade/temporal.py)."""

from dataclasses import dataclass, field

WORKFLOW = "CustomerCascade"
SIGNAL_CONVERSION = "conversion"
SIGNAL_STEP_FAILED = "step_failed"
QUERY_PROGRESS = "progress"
ACTIVITY_DELIVER = "deliver_step"
ACTIVITY_FINISH = "finish_enrollment"


@dataclass
class StepPlan:
    key: str          # "0", "1", … for cascade steps; "ac0", … for after_conversion (ledger ids)
    index: int
    channel: str
    template: str
    wait_s: int       # cascade: wait for a conversion after sending; follow-up: delay before
    phase: str = "cascade"  # cascade | follow_up


@dataclass
class CascadeInput:
    enrollment_id: str
    run_id: str
    campaign: str
    customer_id: str
    steps: list[StepPlan]
    follow_ups: list[StepPlan] = field(default_factory=list)
    time_scale: float = 1.0  # >1 compresses every wait (demos, rehearsals)
    holdout: bool = False  # no messages at all; only watch for a conversion (the baseline)
    send_timeout_s: float = 30.0
    send_max_attempts: int = 10
    send_initial_retry_s: float = 1.0
    search_attributes: bool = True


@dataclass
class ConversionSignal:
    event_id: str
    type: str


@dataclass
class DeliverInput:
    enrollment_id: str
    step: StepPlan
    completes: bool = False  # the cascade ends after this step unless a conversion came


@dataclass
class DeliverResult:
    delivery_id: str
    status: str            # vocabulary.DeliveryStatus: sent, skipped, failed, unknown, deferred
    reason: str | None = None
    provider_message_id: str | None = None
    defer_until: str | None = None  # ISO UTC instant, for status "deferred" (quiet hours)
    # Set by the workflow, never by the activity: its retries ran out, so the activity's
    # own completion write (DeliverInput.completes) never happened.
    gave_up: bool = False


@dataclass
class FinishInput:
    enrollment_id: str
    status: str            # completed | converted
    reason: str | None = None  # the conversion's event id


@dataclass
class TimelineEntry:
    step: str
    channel: str
    status: str
    reason: str | None
    at: str


@dataclass
class Progress:
    state: str
    converted: bool
    conversion_event_id: str | None
    timeline: list[TimelineEntry]
