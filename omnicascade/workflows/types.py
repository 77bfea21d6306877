"""Workflow and activity inputs/outputs: plain dataclasses, durations as data (seconds),
and the names by which the world outside talks to a cascade (cascade/temporal.py)."""

from dataclasses import dataclass, field
from enum import StrEnum

WORKFLOW = "CustomerCascade"
SIGNAL_CONVERSION = "conversion"
SIGNAL_STEP_FAILED = "step_failed"
SIGNAL_STOP = "stop"      # StopSignal: end now (run stopped, version replaced, exit event)
SIGNAL_PAUSE = "pause"    # hold sends until resumed; waits keep running
SIGNAL_RESUME = "resume"  # held sends go out, each re-checked
PATCH_RUN_CONTROL = "run-control"  # workflow.patched(): stop/pause/resume handling
PATCH_SEND_QUEUES = "send-queues"  # workflow.patched(): a step's sends on its own task queue
# workflow.patched(): a conversion or a stop cancels a send Temporal is still retrying
PATCH_SEND_INTERRUPTS = "send-interrupts"
# workflow.patched(): a step the frequency cap skipped still gets its wait (spacing.py)
PATCH_CAP_SPACING = "cap-spacing"
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
    # The task queue the send runs on (a rate-limited channel's, channels/queues.py);
    # None: the cascade's own. Old histories have none, so they replay as they ran.
    task_queue: str | None = None


@dataclass
class CascadeInput:
    enrollment_id: str
    run_id: str
    campaign: str
    # The customer's keyed pseudonym (customers/pseudonym.py), never the id itself: nothing
    # personal goes into Temporal. Histories recorded before carry the id (erasure deletes
    # them); the workflow never reads it, so both replay alike.
    customer_id: str
    steps: list[StepPlan]
    follow_ups: list[StepPlan] = field(default_factory=list)
    time_scale: float = 1.0  # >1 compresses every wait (demos, rehearsals)
    holdout: bool = False  # no messages at all; only watch for a conversion (the baseline)
    send_timeout_s: float = 30.0
    send_max_attempts: int = 10
    send_initial_retry_s: float = 1.0
    search_attributes: bool = True
    pause_recheck_s: float = 300.0  # a send held by a paused run is asked again after this,
    pause_recheck_max_s: float = 21_600.0  # then after twice as long each time, up to this


@dataclass
class ConversionSignal:
    event_id: str
    type: str


@dataclass
class StopSignal:
    status: str            # vocabulary.EnrollmentStatus: stopped | exited
    reason: str            # e.g. "stopped", "replaced", or the exit event's type


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
    defer_until: str | None = None  # ISO UTC instant, for "deferred" (reason: quiet_hours,
    #                                 frequency_cap, send_time, or paused — until resumed)
    # Set by the workflow, never by the activity: its retries ran out, so the activity's
    # own completion write (DeliverInput.completes) never happened.
    gave_up: bool = False


@dataclass
class FinishInput:
    enrollment_id: str
    status: str            # completed | converted | stopped | exited
    reason: str | None = None  # the conversion's event id; why it was stopped or exited


@dataclass
class TimelineEntry:
    step: str
    channel: str
    status: str
    reason: str | None
    at: str


class Stage(StrEnum):
    """Where a cascade is, for machines (the progress query's `stage`; `state` says it in
    words). Queries are not in the history: adding a stage needs no patch."""
    STARTING = "starting"
    SENDING = "sending"            # a step's deliver activity is running
    WAITING = "waiting"            # the wait after a sent step
    DEFERRED = "deferred"          # quiet hours, a cap, the best send time
    HELD = "held"                  # the run is paused
    FOLLOW_UP_DUE = "follow_up_due"
    HOLDOUT = "holdout"
    ENDED = "ended"


@dataclass
class Progress:
    state: str
    converted: bool
    conversion_event_id: str | None
    timeline: list[TimelineEntry]
    stage: str = Stage.STARTING
    step: str | None = None        # the step `stage` is about
