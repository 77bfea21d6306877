"""finish_enrollment: write how a cascade ended (completed, or converted) to the database."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session
from temporalio import activity

from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, utcnow
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import FinishInput


def finish_enrollment(inp: FinishInput, *, session: Session) -> None:
    row = session.get(Enrollment, inp.enrollment_id)
    if row is None:
        return
    # A cascade whose last step already recorded "completed" may still turn out converted
    # (a conversion signal raced that step): converted wins, nothing else overwrites.
    if row.finished_at is not None and not (row.status == "completed"
                                            and inp.status == "converted"):
        return
    row.status = inp.status
    row.finished_at = utcnow()
    if inp.status == "converted":
        row.converted_at = row.converted_at or row.finished_at
        row.conversion_event_id = row.conversion_event_id or inp.reason


class RecordActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _finish(self, inp: FinishInput) -> None:
        with session_scope(self.settings.db_url) as session:
            finish_enrollment(inp, session=session)

    @activity.defn(name="finish_enrollment")
    async def finish_enrollment(self, inp: FinishInput) -> None:
        await asyncio.to_thread(self._finish, inp)
