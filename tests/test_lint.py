"""ruff and mypy are part of the suite (so CI, which runs the suite, fails on either): the
configuration in pyproject.toml is the house style, not a suggestion."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import binary

REPO = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    r = _run(binary("ruff"), "check", "omnicascade", "tests", "bench")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    r = _run(binary("mypy"), "omnicascade")
    assert r.returncode == 0, r.stdout + r.stderr
