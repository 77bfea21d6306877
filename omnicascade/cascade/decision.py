"""Send, skip or defer: the one decision about a step, asked by every part that needs it.

The deliver activity asks it right before every provider call; channel ordering asks which
channels can reach a customer at all; `campaign preview` asks it for every planned message.
They share this function, so they can never disagree. It is pure: the callers load the
facts (`Situation`) and record the answer.

The guards ask in order, and the first that objects decides:
converted → stopped → paused → no address → unsubscribed → no consent → window closed
(a WhatsApp step with no approved template, outside the 24 h customer-service window) →
engaged (the step's `skip_if`) → send time → quiet hours → frequency cap (deferred until
the cap's window admits one more, at most `max_delay` after the step came due, then
skipped; `on_cap: skip` skips at once). `engaged` comes
after the reach guards, so a step skipped as engaged is one that would otherwise have gone out (what
reports count as saved). `send_time: best` defers the step to the customer's best hour
(cascade/send_time.py) after every skip had its say, so a step that will be skipped is
never held for nothing; it picks an hour outside quiet hours (and steps aside when quiet
hours in `skip` mode would skip the step now), and the cap is counted when the send
actually happens. Asked again at that hour, the guard keeps the instant the ledger
recorded and lets it through: a step is deferred for its send time once.

A stopped run (or a cascade that was stopped or exited) skips the step; a paused run holds
it (a deferral with reason `paused`, asked again at `hold_until` or on resume), so nothing
goes out while paused and nothing is lost either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from omnicascade.campaign.model import FrequencyCap, QuietHours
from omnicascade.cascade.send_time import SendTimeFacts, choose
from omnicascade.customers.model import ADDRESS_FIELD, consented
from omnicascade.customers.quiet_hours import customer_zone, quiet_until
from omnicascade.db.models import Customer
from omnicascade.vocabulary import CHANNELS, SkipReason


@dataclass(frozen=True)
class Send:
    address: str


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


@dataclass(frozen=True)
class Defer:
    until: datetime  # aware, UTC
    # or PAUSED: held until the run resumes; SEND_TIME: held for the customer's best hour
    reason: SkipReason = SkipReason.QUIET_HOURS


Decision = Send | Skip | Defer


@dataclass(frozen=True)
class Recipient:
    """What the guards know about a customer: addresses, consents, suppressions, zone."""
    addresses: Mapping[str, str] = field(default_factory=dict)  # channel → address
    consents: Mapping[str, bool] = field(default_factory=dict)  # absent: not refused
    suppressed: frozenset[tuple[str, str]] = frozenset()        # (channel, address)
    timezone: str | None = None
    phone: str | None = None

    @classmethod
    def of(cls, customer: Customer | None,
           suppressed: frozenset[tuple[str, str]] = frozenset()) -> Recipient | None:
        if customer is None:
            return None
        addresses = {ch: getattr(customer, col) for ch, col in ADDRESS_FIELD.items()
                     if getattr(customer, col)}
        return cls(addresses, dict(customer.consents or {}), suppressed, customer.timezone,
                   customer.phone)


@dataclass(frozen=True)
class Situation:
    channel: str
    recipient: Recipient | None
    now: datetime                                 # aware
    converted: bool = False                       # a matching conversion since entry
    stopped: bool = False                         # run stopped, or cascade stopped/exited
    paused: bool = False                          # the run is paused: hold the send
    recheck: timedelta = timedelta(minutes=5)     # how long a held send waits, at most
    quiet_hours: QuietHours | None = None
    campaign_timezone: str | None = None
    frequency_cap: FrequencyCap | None = None
    sends_in_cap_window: int | None = None        # None: not counted (preview, ordering)
    cap_admits_at: datetime | None = None         # when the window admits one more (aware)
    due: datetime | None = None                   # when the step first came due (aware)
    skip_if: frozenset[str] = frozenset()         # the step's `skip_if` engagements
    engaged: frozenset[str] = frozenset()         # those recorded on an earlier message
    send_time: SendTimeFacts | None = None        # `send_time: best` (None: as scheduled)
    # A whatsapp step with no approved template sends a free-form body, which WhatsApp takes
    # only inside the 24 h window (cascade/conversations.py): is it open at `now`?
    needs_window: bool = False
    window_open: bool = False

    @property
    def address(self) -> str | None:
        return self.recipient.addresses.get(self.channel) if self.recipient else None


Guard = Callable[[Situation], Decision | None]


def applies_to(cap: FrequencyCap, channel: str) -> bool:
    """Whether sends on this channel count against (and are limited by) the cap."""
    return not cap.channels or channel in cap.channels


def _converted(s: Situation) -> Decision | None:
    return Skip(SkipReason.CONVERTED) if s.converted else None


def _stopped(s: Situation) -> Decision | None:
    return Skip(SkipReason.STOPPED) if s.stopped else None


def _paused(s: Situation) -> Decision | None:
    return Defer(s.now + s.recheck, SkipReason.PAUSED) if s.paused else None


def _address(s: Situation) -> Decision | None:
    return None if s.address else Skip(SkipReason.NO_ADDRESS)


def _suppressed(s: Situation) -> Decision | None:
    assert s.recipient is not None and s.address is not None  # after _address
    if (s.channel, s.address) in s.recipient.suppressed:
        return Skip(SkipReason.UNSUBSCRIBED)
    return None


def _consent(s: Situation) -> Decision | None:
    assert s.recipient is not None
    return None if consented(s.recipient.consents, s.channel) \
        else Skip(SkipReason.NO_CONSENT)


def _window(s: Situation) -> Decision | None:
    return Skip(SkipReason.WINDOW_CLOSED) if s.needs_window and not s.window_open else None


def _engaged(s: Situation) -> Decision | None:
    return Skip(SkipReason.ENGAGED) if s.skip_if & s.engaged else None


def zone_of(s: Situation) -> ZoneInfo:
    """The customer's time zone (quiet_hours.customer_zone)."""
    r = s.recipient
    return customer_zone(r.timezone if r else None, r.phone if r else None,
                         s.campaign_timezone)


# A send-time deferral whose instant is this close is due: the run's clock maps a
# rehearsal's wall-clock timer back to campaign time with rounding.
SEND_TIME_SLACK = timedelta(minutes=1)


def _send_time(s: Situation) -> Decision | None:
    facts = s.send_time
    if facts is None:
        return None
    if facts.planned is not None:  # deferred once already: wait for that instant, then send
        return Defer(facts.planned, SkipReason.SEND_TIME) \
            if facts.planned > s.now + SEND_TIME_SLACK else None
    zone = zone_of(s)
    quiet = s.quiet_hours
    if quiet is not None and quiet.mode == "skip" and \
            quiet_until(s.now, zone, quiet.start, quiet.end) is not None:
        return None  # quiet hours skip the step: that skip wins
    choice = choose(s.now, zone, facts, quiet)
    return Defer(choice.at, SkipReason.SEND_TIME) if choice.at > s.now else None


def _quiet_hours(s: Situation) -> Decision | None:
    if s.quiet_hours is None:
        return None
    zone = zone_of(s)
    until = quiet_until(s.now, zone, s.quiet_hours.start, s.quiet_hours.end)
    if until is None:
        return None
    return Skip(SkipReason.QUIET_HOURS) if s.quiet_hours.mode == "skip" else Defer(until)


# A window that admits the send `max_delay` after it came due is within it (the oldest
# send leaves the window a moment after `per`).
CAP_SLACK = timedelta(minutes=1)


def _frequency_cap(s: Situation) -> Decision | None:
    cap = s.frequency_cap
    if cap is None or s.sends_in_cap_window is None or not applies_to(cap, s.channel):
        return None
    if s.sends_in_cap_window < cap.max:
        return None
    # `defer`: wait for the window to admit it, unless that is past max_delay after the
    # step came due (then waiting is pointless: skip now)
    latest = (s.due or s.now) + timedelta(seconds=cap.max_delay_s) + CAP_SLACK
    if cap.on_cap == "skip" or s.cap_admits_at is None or s.cap_admits_at > latest:
        return Skip(SkipReason.FREQUENCY_CAP)
    return Defer(max(s.cap_admits_at, s.now), SkipReason.FREQUENCY_CAP)


REACH: Sequence[Guard] = (_address, _suppressed, _consent)
GUARDS: Sequence[Guard] = (_converted, _stopped, _paused, *REACH, _window, _engaged,
                           _send_time, _quiet_hours, _frequency_cap)
# What a message planned ahead (campaign preview) will meet at its time: a conversion, a
# stop or pause, engagement and the cap depend on what happens before it, so the plan
# assumes none (nor a new message from the customer opening WhatsApp's window).
PLANNED: Sequence[Guard] = (*REACH, _window, _send_time, _quiet_hours)


def decide(s: Situation, guards: Sequence[Guard] = GUARDS) -> Decision:
    for guard in guards:
        decision = guard(s)
        if decision is not None:
            return decision
    assert s.address is not None  # _address is always among the guards
    return Send(s.address)


def reachable(recipient: Recipient | None, now: datetime,
              channels: Sequence[str] = CHANNELS) -> set[str]:
    """The channels on which this customer can be messaged at all (address, not
    suppressed, consent) — what channel ordering sorts by."""
    return {ch for ch in channels
            if isinstance(decide(Situation(ch, recipient, now), REACH), Send)}
