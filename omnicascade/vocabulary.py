"""The words every part of omnicascade shares, each spelled once: channels, the statuses of
runs, enrollments and deliveries, why a step was skipped, and the reserved variant names.

Pure (standard library only): the workflow code imports it too. The rules for moving
between statuses live in `cascade/lifecycle.py`; this module only names things.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

CHANNELS = ("email", "sms", "telegram", "push")
Channel = Literal["email", "sms", "telegram", "push"]

DEFAULT_VARIANT = "default"  # a campaign without an experiment
HOLDOUT = "holdout"          # gets no messages; its conversions are the baseline


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
    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    STOPPED = "stopped"        # the run was stopped, or the cascade stopped or exited
    PAUSED = "paused"          # a deferral, not a skip: the run is paused, the send is held


SKIP_LABELS = {
    SkipReason.CONVERTED: "already converted",
    SkipReason.NO_ADDRESS: "no address",
    SkipReason.UNSUBSCRIBED: "unsubscribed",
    SkipReason.NO_CONSENT: "no consent",
    SkipReason.QUIET_HOURS: "quiet hours",
    SkipReason.FREQUENCY_CAP: "frequency cap",
    SkipReason.STOPPED: "stopped",
    SkipReason.PAUSED: "paused",
}
