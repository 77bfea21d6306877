"""The baseline: workflows of the same shape as a cascade with nothing of omnicascade in them."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bare_noop")
async def bare_noop(_: int) -> None:
    return None


@workflow.defn(name="BareNoop")
class BareNoop:
    @workflow.run
    async def run(self, _: int) -> None:
        return None


@workflow.defn(name="BareCascade")
class BareCascade:
    @workflow.run
    async def run(self, wait_s: float) -> None:
        for i in range(4):
            await workflow.execute_activity(bare_noop, i,
                                            start_to_close_timeout=timedelta(seconds=30))
            if i < 3:
                await workflow.sleep(wait_s)


