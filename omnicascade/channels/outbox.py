"""The embedded default provider: render and store, never deliver. `omnicascade outbox` reads it."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from omnicascade.channels.base import Message, SendResult
from omnicascade.db.models import OutboxMessage
from omnicascade.db.session import session_scope


class OutboxChannel:
    provider = "outbox"

    def __init__(self, db_url: str):
        self.db_url = db_url

    async def send(self, message: Message) -> SendResult:
        return await asyncio.to_thread(self._store, message)

    def _store(self, m: Message) -> SendResult:
        try:
            with session_scope(self.db_url) as session:
                row = OutboxMessage(delivery_id=m.delivery_id, customer_id=m.customer_id,
                                    run_id=m.run_id, step=m.step, channel=m.channel,
                                    to_address=m.to, subject=m.subject, title=m.title,
                                    body=m.body, html=m.html)
                session.add(row)
                session.flush()
                return SendResult(provider=self.provider, message_id=f"outbox-{row.id}")
        except IntegrityError:
            # Already stored by an earlier attempt: the outbox, like a real provider with an
            # idempotency key, does not store a second copy.
            with session_scope(self.db_url) as session:
                row = session.query(OutboxMessage).filter_by(delivery_id=m.delivery_id).one()
                return SendResult(provider=self.provider, message_id=f"outbox-{row.id}")
