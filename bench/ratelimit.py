"""Does a provider limit hold across workers? `python -m bench.ratelimit [--json]`

Two `omnicascade worker` processes (by default) on one Temporal dev server, SMS limited to
5/s (OMNICASCADE_SMS_RATE, channels/queues.py: the SMS queue's server-side dispatch
limit), one-step SMS campaign launched to 200 customers. Measured from the ledger's
`sending_at` stamps (taken right before each provider call): the rate over all messages,
the most sent in any 1 s and any 5 s window, and the pollers Temporal saw on the SMS queue
(so both workers took part). The server paces dispatch; the work between dispatch and
the provider call (database, rendering) adds jitter, so single seconds can exceed the rate
while every longer window holds it. A figure for the README, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from bench.stack import Stack
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.channels.queues import send_queue
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Delivery
from omnicascade.db.session import read_scope, session_scope

CAMPAIGN = """campaign: paced-sms
conversion: {events: [order_placed]}
steps:
  - {channel: sms, template: s}
"""


def progress(message: str) -> None:
    print(f"[ratelimit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def per_second(stamps: list[float]) -> list[int]:
    """Messages started in each second since the first."""
    counts = [0] * (int(stamps[-1] - stamps[0]) + 1 if stamps else 0)
    for t in stamps:
        counts[int(t - stamps[0])] += 1
    return counts


async def measure(n: int, rate: float, workers: int, workdir: Path) -> dict:
    os.environ["OMNICASCADE_SMS_RATE"] = str(rate)  # the launcher plans the same queues
    stack = Stack(workdir / "state", env={"OMNICASCADE_SMS_RATE": str(rate)})
    stack.start(workers)
    try:
        client = await stack.wait_ready()
        settings = stack.settings
        ids = [f"r{i:05d}" for i in range(n)]
        with session_scope(settings.db_url) as s:
            upsert_customers([CustomerIn(id=i, phone="+4915112345678") for i in ids],
                             session=s)
        folder = workdir / "paced"
        (folder / "templates").mkdir(parents=True)
        (folder / "templates" / "s.txt.j2").write_text("Your cart is waiting")
        (folder / "paced.yaml").write_text(CAMPAIGN)
        progress(f"launching {n} customers, SMS limited to {rate:g}/s, {workers} workers")
        run = await launch(load_campaign(folder / "paced.yaml"), settings,
                           audience=[CustomerIn(id=i) for i in ids])
        stamps: list[float] = []
        deadline = time.monotonic() + 60 + 3 * n / rate
        while len(stamps) < n and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            with read_scope(settings.db_url) as s:
                stamps = sorted(t.timestamp() for t in s.scalars(select(Delivery.sending_at)
                                .where(Delivery.run_id == run.run_id,
                                       Delivery.status == "sent")) if t is not None)
        queue = send_queue(settings, "sms")
        assert queue is not None
        described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        def peak(window: float) -> int:
            return max((sum(1 for t in stamps[i:] if t < start + window)
                        for i, start in enumerate(stamps)), default=0)
        return {"messages": n, "sent": len(stamps), "limit_per_s": rate, "workers": workers,
                "sms_queue_pollers": len({p.identity for p in described.pollers}),
                "span_s": round(span, 1),
                "rate_per_s": round((len(stamps) - 1) / span, 2) if span else None,
                "peak_in_any_1s": peak(1.0), "peak_in_any_5s": peak(5.0),
                "per_second": per_second(stamps)}
    finally:
        stack.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ratelimit",
                                description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="omnicascade-ratelimit-"))
    try:
        figures = asyncio.run(measure(args.messages, args.rate, args.workers, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures) if args.json else
          "\n".join(f"{k:20} {v}" for k, v in figures.items()))
    sys.exit(0 if figures["sent"] == figures["messages"] else 1)


if __name__ == "__main__":
    main()
