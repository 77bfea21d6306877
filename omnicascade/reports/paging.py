"""Pages of a list read: every list the CLI, the console and the read API show takes a
`limit` (at most MAX_LIMIT) and an opaque `cursor`, and says where the next page starts
(`next_cursor`, None at the end). The one home of the list sizes.

Keyset pagination: a cursor is the sort key — (instant, id) — of the last row shown, so
the next page starts after it even when rows are added meanwhile or several rows share an
instant (the id breaks the tie). It is base64 of JSON, named by its list, so a cursor of
the runs cannot be handed to the outbox by mistake."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from omnicascade.errors import UserFacingError

DEFAULT_LIMIT = 100  # a list read asked without a limit
MAX_LIMIT = 500  # the most one page may hold (README, *HTTP API*)
SEARCH_MATCHES = 50  # the console's customer search: prefix matches shown (timeline.find)
RECENT_CONVERSIONS = 20  # a run's page: its latest conversions
# The lists that page, and the type of the id that breaks a tie between equal instants.
KEYS: dict[str, type] = {"runs": str, "messages": str, "outbox": int}


class PageError(UserFacingError):
    """A limit out of range or a cursor this list did not make: the API answers 422."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise PageError(f"limit must be between 1 and {MAX_LIMIT} (got {limit}); "
                        f"page through longer lists with the cursor")
    return limit


def encode(kind: str, at: datetime, key: str | int) -> str:
    raw = json.dumps([kind, at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str) -> tuple[datetime, Any]:
    """(instant, id) of a cursor made by `encode(kind, …)`, else PageError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made, at, key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if made != kind or type(key) is not KEYS[kind]:
            raise ValueError(made)
        when = datetime.fromisoformat(at)
        if when.tzinfo is not None:  # stored instants are naive UTC
            raise ValueError(at)
        return when, key
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise PageError(f"not a cursor of this list: {cursor[:40]!r}; use the next_cursor "
                        f"of the page before") from None


def keyset(query: Select[Any], kind: str, cursor: str | None, at: InstrumentedAttribute[Any],
           key: InstrumentedAttribute[Any], *, newest_first: bool) -> Select[Any]:
    """`query` ordered by (at, key) and starting after `cursor`'s row."""
    query = query.order_by(at.desc(), key.desc()) if newest_first else query.order_by(at, key)
    if cursor is None:
        return query
    last_at, last_key = decode(kind, cursor)
    if newest_first:
        return query.where(or_(at < last_at, and_(at == last_at, key < last_key)))
    return query.where(or_(at > last_at, and_(at == last_at, key > last_key)))


def cut(items: list[Any], limit: int, kind: str,
        sort_key: Any) -> tuple[list[Any], str | None]:
    """The first `limit` of `limit + 1` items fetched, and the cursor after the last one
    if there were more."""
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    at, key = sort_key(items[-1])
    return items, encode(kind, at, key)
