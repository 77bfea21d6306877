"""Campaign time: the one clock a run lives on.

A run launched with `--time-scale N` is a rehearsal: its campaign clock starts at the
launch and runs N times faster than the wall clock (campaign = launch + N × elapsed). The
database stores wall-clock instants only; everything that reasons about the campaign's own
time — the send-time guards (quiet hours, frequency caps), deferrals, the conversion
window, every time and duration a view or report shows — maps them through `RunClock`, so
a rehearsal's quiet night takes seconds and its report reads in campaign hours and days.
A live run (scale 1) maps every instant to itself.

A campaign duration becomes a wall-clock one by one rule, `RunClock.wall_span` (÷ N),
exactly once, where it is used:
- a step's `wait`, a follow-up's `delay`, the holdout's window: the workflow's timers,
  workflows/cascade.py `_scaled` — the same rule written out there, because workflow code
  may import nothing but the vocabulary (tests/test_clock.py holds the two equal);
- quiet hours and `send_time: best`: the guard decides a campaign instant, the ledger and
  the timer get `wall(instant)` (activities/deliver.py record_decision);
- the frequency cap's `per`: at read time, counting the window's sends (activities/caps.py
  cap_window);
- `conversion.window`: at write time, once — the enrollment stores it already on the wall
  clock (cascade/enroll.py), and every reader (cascade/entries.py Counts) takes it as stored.
`conversion.lookback` is not scaled: it reaches back before the entry, into the customer's
real past, which no rehearsal compresses. WhatsApp's 24 h window is the provider's, on the
wall clock too. `now_utc` is the one "now".

Pure (standard library only), shared by activities, reports, the CLI and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def _like(anchor: datetime, value: datetime) -> datetime:
    """`anchor` (naive UTC, as stored) made comparable with `value` (naive or aware)."""
    if value.tzinfo is None:
        return anchor
    return anchor.replace(tzinfo=UTC).astimezone(value.tzinfo)


@dataclass(frozen=True)
class RunClock:
    started: datetime        # the run's launch, naive UTC (runs.created_at)
    scale: float = 1.0       # campaign seconds per wall-clock second

    @property
    def rehearsal(self) -> bool:
        return self.scale != 1.0

    @property
    def label(self) -> str:
        """`rehearsal ×3600`, or "" for a live run: every view that shows a rehearsal says so."""
        if not self.rehearsal:
            return ""
        return f"rehearsal ×{self.scale:g}"

    def campaign(self, wall: datetime) -> datetime:
        """The campaign-clock instant of a wall-clock instant (same tz-awareness)."""
        if not self.rehearsal:
            return wall
        start = _like(self.started, wall)
        return start + (wall - start) * self.scale

    def wall(self, at: datetime) -> datetime:
        """The wall-clock instant at which the campaign clock reads `at`."""
        if not self.rehearsal:
            return at
        start = _like(self.started, at)
        return start + (at - start) / self.scale

    def span(self, wall: timedelta) -> timedelta:
        """A wall-clock duration in campaign time."""
        return wall * self.scale

    def wall_span(self, span: timedelta) -> timedelta:
        """A campaign duration (a wait, a cap window, a conversion window) in wall-clock
        time: the one rule (see the module's docstring for where each is mapped)."""
        return span / self.scale


LIVE = RunClock(datetime(1970, 1, 1), 1.0)


def clock_of(run: object) -> RunClock:
    """The clock of a run row (anything with `created_at` and `time_scale`)."""
    scale = float(getattr(run, "time_scale", 1.0) or 1.0)
    started = getattr(run, "created_at", None)
    if started is None or scale == 1.0:
        return LIVE
    return RunClock(started.astimezone(UTC).replace(tzinfo=None)
                    if started.tzinfo else started, scale)


def now_utc(*, aware: bool = False) -> datetime:
    """The one "now" of omnicascade (column defaults, guards, views): UTC, naive like every
    stored time (the database keeps naive UTC), or `aware` for code that reasons in time
    zones (preview, channel ordering). Nothing else reads the wall clock."""
    now = datetime.now(UTC)
    return now if aware else now.replace(tzinfo=None)
