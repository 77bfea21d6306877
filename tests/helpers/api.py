"""The HTTP API in the test process: the app over ASGI (no socket), and the secret the test
settings sign with."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

SECRET = "test-webhook-secret-0123456789abcdef"


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client for `app` without a server (close it, or use `async with`)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
