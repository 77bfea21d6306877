"""The tables of erasure (cascade/erasure.py), kept beside models.py (which imports this
module, so Base.metadata always has them). Neither holds anything readable about a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omnicascade.clock import now_utc
from omnicascade.db.models import Base


class ErasedSubject(Base):
    """An erased person stays out: the keyed hash (customers/pseudonym.py) of their
    customer id and of each address they had. An import, a customer write or a trigger
    event naming one of them creates nobody and sends nothing until it is readmitted."""
    __tablename__ = "erased_subjects"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex HMAC-SHA256
    kind: Mapped[str] = mapped_column(String(16))  # id | email | phone | telegram | push
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc)


class Erasure(Base):
    """The audit of every erasure: when, through what, and how much it changed — never whom.
    `workflows_pending` holds the enrollment ids (opaque) whose Temporal executions could
    not be deleted yet; the reconciler retries them until the list is empty."""
    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime, default=now_utc, index=True)
    via: Mapped[str] = mapped_column(String(16))  # cli | api
    rows: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # table → rows changed
    cascades_ended: Mapped[int] = mapped_column(Integer, default=0)
    workflows_deleted: Mapped[int] = mapped_column(Integer, default=0)
    # NULL once none is left (SQL NULL, so the reconciler's query is an index-free IS NOT NULL)
    workflows_pending: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
