"""Campaign time: the one clock a run lives on.

A run launched with `--time-scale N` is a rehearsal: its campaign clock starts at the
launch and runs N times faster than the wall clock (campaign = launch + N × elapsed). The
database stores wall-clock instants only; everything that reasons about the campaign's own
time — the send-time guards (quiet hours, frequency caps), deferrals, the conversion
window, every time and duration a view or report shows — maps them through `RunClock`, so
a rehearsal's quiet night takes seconds and its report reads in campaign hours and days.
A live run (scale 1) maps every instant to itself.

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
        """A campaign duration (a cap window, a conversion window) in wall-clock time."""
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


def now_utc() -> datetime:
    """Naive UTC now, like the stored times."""
    return datetime.now(UTC).replace(tzinfo=None)
