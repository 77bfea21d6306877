"""The words every part of omnicascade shares, each spelled once: channels, the statuses of
runs, enrollments and deliveries, why a step was skipped, and the reserved variant names.

Pure (standard library only): the workflow code imports it too. The rules for moving
between statuses live in `cascade/lifecycle.py`; this module only names things.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

CHANNELS = ("email", "sms", "whatsapp", "telegram", "push", "webhook")
Channel = Literal["email", "sms", "whatsapp", "telegram", "push", "webhook"]
# Channels that need an explicit opt-in (`consent_<channel>: yes`): without it the step is
# skipped `no_consent`. Every other channel is allowed unless the customer refused it.
OPT_IN_CHANNELS = frozenset({"whatsapp"})

# The longest wait between two attempts of one send: the deliver activity's RetryPolicy
# maximum_interval (workflows/cascade.py) and the cap on a provider's Retry-After
# (channels/retry_after.py) — one number, so no provider can park a cascade for longer.
SEND_RETRY_MAX_S = 300

DEFAULT_VARIANT = "default"  # a campaign without an experiment
HOLDOUT = "holdout"          # gets no messages; its conversions are the baseline


class WinnerMetric(StrEnum):
    """`experiment.winner.metric`: what a winner is decided on (experiments/winner.py)."""
    CONVERSION_RATE = "conversion_rate"
    REVENUE_PER_CUSTOMER = "revenue_per_customer"


class Phase(StrEnum):
    CASCADE = "cascade"        # the steps, each followed by its wait
    FOLLOW_UP = "follow_up"    # after_conversion: once, after the conversion


class RunStatus(StrEnum):
    LISTENING = "listening"    # a trigger campaign's live version, enrolling on its events
    RUNNING = "running"        # an audience launch whose cascades are under way
    PAUSED = "paused"          # no message goes out; sends are held until resumed
    DRAINING = "draining"      # enrolls nobody; cascades in flight finish normally
    STOPPED = "stopped"        # enrolls nobody; no message starts
    SUPERSEDED = "superseded"  # a newer version listens; cascades in flight finish here
    COMPLETED = "completed"    # an audience launch whose cascades have all ended


# Runs that take trigger events (a paused version still stores and enrolls them).
ENROLLING_RUN = frozenset({RunStatus.LISTENING, RunStatus.PAUSED})


class EnrollmentStatus(StrEnum):
    PENDING = "pending"        # row written, workflow not yet confirmed started
    ACTIVE = "active"
    COMPLETED = "completed"    # every step done, no conversion
    CONVERTED = "converted"
    STOPPED = "stopped"        # its run was stopped, or replaced (exit_reason says which)
    EXITED = "exited"          # an exit event ended it; not a conversion
    EXCLUDED = "excluded"      # never started (exit_reason says why)
    ERASED = "erased"          # its customer was erased (cascade/erasure.py): ended, anonymous
    GLOBAL_CONTROL = "global_control"  # in the global control: never messaged, conversions count


LIVE_ENROLLMENT = frozenset({EnrollmentStatus.PENDING, EnrollmentStatus.ACTIVE})


class DeliveryStatus(StrEnum):
    """The delivery ledger: `sending` is committed before the provider call."""
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"          # permanent: the cascade moves on at once
    RETRYING = "retrying"      # clearly not sent; Temporal retries the attempt
    SKIPPED = "skipped"        # a guard said no (SkipReason)
    UNKNOWN = "unknown"        # the attempt died mid-call: maybe sent, never resent
    DEFERRED = "deferred"      # quiet hours: goes out later


# Handed to a provider (unknown: maybe) — counted as sent, given its wait, never resent.
WENT_OUT = frozenset({DeliveryStatus.SENT, DeliveryStatus.UNKNOWN})
# Settled: a later attempt returns the stored result instead of acting again.
SETTLED = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED,
                     DeliveryStatus.UNKNOWN})
NOT_DELIVERED = frozenset({DeliveryStatus.FAILED, DeliveryStatus.RETRYING})


class SkipReason(StrEnum):
    """Why a step was not sent, in the order the send-time guards ask."""
    CONVERTED = "converted"
    NO_ADDRESS = "no_address"
    UNSUBSCRIBED = "unsubscribed"
    NO_CONSENT = "no_consent"
    # WhatsApp takes a free-form body only within 24 h of the customer's last message to us;
    # a step without an approved template (`<name>.whatsapp.yaml`) outside it is skipped
    WINDOW_CLOSED = "window_closed"
    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    STOPPED = "stopped"        # the run was stopped, or the cascade stopped or exited
    PAUSED = "paused"          # a deferral, not a skip: the run is paused, the send is held
    ENGAGED = "engaged"        # `skip_if`: an earlier message of the cascade was engaged with
    SEND_TIME = "send_time"    # a deferral, not a skip: `send_time: best` waits for the best hour


class ExitReason(StrEnum):
    """Why a cascade ended without finishing (enrollments.exit_reason), besides a skip
    reason (`converted` for an excluded entry, `stopped` for a stopped run) or the type of
    the exit event that ended it."""
    REPLACED = "replaced"      # a newer version replaced the one it ran in


# One human label per reason, skip and exit alike: every table, page and JSON `label` uses
# these. An exit event's own type (e.g. cart_emptied) has no label: it is shown as written.
REASON_LABELS: dict[str, str] = {
    SkipReason.CONVERTED: "already converted",
    SkipReason.NO_ADDRESS: "no address",
    SkipReason.UNSUBSCRIBED: "unsubscribed",
    SkipReason.NO_CONSENT: "no consent",
    SkipReason.WINDOW_CLOSED: "WhatsApp's 24 h window closed and no approved template",
    SkipReason.QUIET_HOURS: "quiet hours",
    SkipReason.FREQUENCY_CAP: "frequency cap",
    SkipReason.STOPPED: "run stopped",
    SkipReason.PAUSED: "held while paused",
    SkipReason.ENGAGED: "already engaged",
    SkipReason.SEND_TIME: "best send time",
    ExitReason.REPLACED: "replaced by a newer version",
}


def reason_label(reason: str | None) -> str:
    """The human label of a skip or exit reason ("no address"); an unknown reason (an exit
    event's type, a provider's failure text) as written."""
    if not reason:
        return ""
    return REASON_LABELS.get(reason, reason)


# `steps[].skip_if`: the engagements with an earlier message of the cascade that skip a step.
Engagement = Literal["delivered", "opened", "clicked", "replied"]
ENGAGEMENTS: tuple[Engagement, ...] = ("delivered", "opened", "clicked", "replied")
# An open no person made (Apple Mail Privacy Protection's prefetch, SendGrid's
# `sg_machine_open`, or an open within a second of delivery): stored under this name, so it
# proves delivery but never counts as an open.
MACHINE_OPEN = "machine_open"
# Provider feedback events (stored lower case) proving each engagement: a click proves an
# open; an open (a machine's too) and a reply prove a delivery.
CLICK_EVENTS = frozenset({"click", "clicked"})
REPLY_EVENTS = frozenset({"reply", "replied"})
OPEN_EVENTS = frozenset({"open", "opened", "read"}) | CLICK_EVENTS
ENGAGEMENT_EVENTS: dict[str, frozenset[str]] = {
    "delivered": frozenset({"delivered", "delivery", MACHINE_OPEN}) | OPEN_EVENTS
    | REPLY_EVENTS,
    "opened": OPEN_EVENTS, "clicked": CLICK_EVENTS, "replied": REPLY_EVENTS}


FOLLOW_UP_PREFIX = "ac"  # ledger keys of after_conversion steps: "ac0", "ac1", …


def step_label(key: str | int, phase: str | None = None) -> str:
    """The one way a step is named for people, numbered from 1: cascade step key "0" (or
    index 0) → "step 1"; follow-up key "ac0" (or index 0 with phase follow_up) →
    "after 1". Machines keep the key; views show this."""
    text = str(key)
    if text.startswith(FOLLOW_UP_PREFIX):
        return f"after {int(text[len(FOLLOW_UP_PREFIX):]) + 1}"
    if not text.isdigit():
        return text
    if phase == Phase.FOLLOW_UP:
        return f"after {int(text) + 1}"
    return f"step {int(text) + 1}"


def holdout_note(percent: float, holdout: int, audience: int) -> str:
    """The one way the holdout's size is said (audience preview, report): "holdout of 0
    customers (10% of 14)" — a hash decides who is held out, so a small audience can
    leave the holdout empty and the lift unmeasurable."""
    share = f"{percent:g}%"
    return f"holdout of {holdout} customer{'' if holdout == 1 else 's'} ({share} of {audience})"
