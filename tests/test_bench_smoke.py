"""The benchmark must keep working: a tiny run prints every figure the README's table needs
(timings are measured by the benchmark, never asserted here) and finds no message after a
conversion and no duplicate delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KEYS = {"customers", "enroll_per_s", "baseline_enroll_per_s", "cascade_per_s",
        "baseline_cascade_per_s", "stop_p50_ms", "stop_p99_ms", "sends_after_conversion",
        "duplicate_deliveries", "worker_rss_mb", "api_rss_mb"}


def test_bench_runs_and_reports_every_figure():
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")}
    r = subprocess.run([sys.executable, "-m", "bench", "--customers", "20", "--wait", "1",
                        "--stop-samples", "5", "--json"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(figures) >= KEYS
    assert figures["customers"] == 20
    assert figures["sends_after_conversion"] == 0 and figures["duplicate_deliveries"] == 0
    assert figures["errors_logged"] == 0
    assert figures["worker_rss_mb"] > 0 and figures["api_rss_mb"] > 0


def test_rate_limit_bench_runs_with_two_workers_polling_the_queue():
    """`python -m bench.ratelimit` (README's rate-limit figure): a tiny run still sends every
    message, through two workers that both poll the rate-limited SMS queue."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")}
    r = subprocess.run([sys.executable, "-m", "bench.ratelimit", "--messages", "12",
                        "--rate", "20", "--json"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert (figures["sent"], figures["workers"], figures["sms_queue_pollers"]) == (12, 2, 2)
    assert {"rate_per_s", "peak_in_any_1s", "peak_in_any_5s"} <= set(figures)


def test_size_bench_measures_before_and_after_a_prune():
    """`python -m bench.size` (docs/operations.md, "Database size"): a tiny run measures the
    database, prunes every kind, and the pruned database is smaller."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")}
    r = subprocess.run([sys.executable, "-m", "bench.size", "--customers", "10", "--json"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout)
    assert figures["customers"] == 10 and figures["messages"] == 40
    assert figures["pruned_rows"] == {"outbox_messages": 40, "events": 10,
                                      "delivery_events": 25}
    assert 0 < figures["bytes_after_prune"] < figures["bytes_before_prune"]
