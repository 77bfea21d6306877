"""finish_enrollment: write how a cascade ended (completed, converted, stopped or exited) to
the database; a no-op where the database already says it ended."""

from __future__ import annotations

import asyncio

from temporalio import activity

from omnicascade.cascade import lifecycle
from omnicascade.config import Settings
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import ACTIVITY_FINISH, FinishInput


class RecordActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _finish(self, inp: FinishInput) -> None:
        status = EnrollmentStatus(inp.status)
        converted = status == EnrollmentStatus.CONVERTED
        with session_scope(self.settings.db_url) as session:
            lifecycle.finish(inp.enrollment_id, status, session=session,
                             conversion_event_id=inp.reason if converted else None,
                             exit_reason=None if converted else inp.reason)

    @activity.defn(name=ACTIVITY_FINISH)
    async def finish_enrollment(self, inp: FinishInput) -> None:
        await asyncio.to_thread(self._finish, inp)
