"""Waiting for something that happens in another process or on a timer: poll until `check`
returns something truthy, or fail with a message naming what was awaited and the last value
seen (never an IndexError or a bare "timed out")."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 60,
               interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)


async def eventually(check: Callable[[], T | Awaitable[T]], what: str, timeout: float = 60,
                     interval: float = 0.05) -> T:
    """`wait_until` for async tests: `check` may be a plain or an async function."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last: {last!r})")
        await asyncio.sleep(interval)
