"""Query helpers shared by every repository function: `IN (…)` over long lists, in chunks
small enough for any backend's bound-parameter limit (old SQLite builds allow 999)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.orm import Session

T = TypeVar("T")
CHUNK = 500


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def scalars_in(session: Session, build: Callable[[list[Any]], Executable],
               values: Sequence[Any]) -> list[Any]:
    """`session.scalars(build(chunk))` for every chunk of `values`, concatenated."""
    out: list[Any] = []
    for chunk in chunks(values):
        out.extend(session.scalars(build(chunk)))
    return out


def rows_in(session: Session, build: Callable[[list[Any]], Executable],
            values: Sequence[Any]) -> list[Any]:
    """`session.execute(build(chunk))` rows for every chunk of `values`, concatenated."""
    out: list[Any] = []
    for chunk in chunks(values):
        out.extend(session.execute(build(chunk)))
    return out
