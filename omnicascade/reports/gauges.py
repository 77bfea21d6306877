"""Gauges read from the database for /metrics: cascades active by campaign, and messages
handed to a provider after the customer's conversion (promise 1: always 0 — the alert).

A custom Prometheus collector with a cache: a scrape reads the database at most once every
REFRESH_S, whatever the scrape interval and however many scrapers, so /metrics never costs
the database more than two small counts per 15 s. A database that does not answer leaves
the last values (and omnicascade_gauges_fresh 0), never a failed scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from omnicascade.db.models import Enrollment
from omnicascade.db.session import read_scope
from omnicascade.reports.run_views import sends_after_conversion
from omnicascade.telemetry import bounded
from omnicascade.vocabulary import LIVE_ENROLLMENT

REFRESH_S = 15.0
log = logging.getLogger(__name__)


class DatabaseGauges(Collector):
    def __init__(self, db_url: str, refresh_s: float = REFRESH_S):
        self.db_url, self.refresh_s = db_url, refresh_s
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._active: dict[str, int] = {}
        self._late = 0
        self._fresh = False

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._at < self.refresh_s:
                return
            self._at = time.monotonic()
            try:
                with read_scope(self.db_url) as session:
                    # Slugs come from runs (campaigns that exist); `bounded` keeps an odd
                    # one from becoming a label that is not an identifier.
                    rows = session.execute(select(Enrollment.campaign, func.count())
                                           .where(Enrollment.status.in_(LIVE_ENROLLMENT))
                                           .group_by(Enrollment.campaign)).all()
                    self._active = {bounded(c): int(n) for c, n in rows}
                    self._late = sends_after_conversion(session=session)
                self._fresh = True
            except Exception as exc:  # the scrape still answers; /ready says what is down
                log.warning("metrics: database gauges not refreshed: %s", type(exc).__name__)
                self._fresh = False

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._refresh()
        active = GaugeMetricFamily("omnicascade_cascades_active",
                                   "Cascades pending or active, by campaign (from the "
                                   "database, at most 15 s old)", labels=["campaign"])
        for campaign, n in sorted(self._active.items()):
            active.add_metric([campaign], n)
        yield active
        yield GaugeMetricFamily("omnicascade_sends_after_conversion",
                                "Cascade messages handed to a provider after the customer's "
                                "conversion was recorded (all time, from the database). "
                                "Must be 0", value=self._late)
        yield GaugeMetricFamily("omnicascade_gauges_fresh",
                                "1 when the database gauges were refreshed on the last try",
                                value=1 if self._fresh else 0)
