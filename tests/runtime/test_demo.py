"""`omnicascade demo` is the product's main job: it must run end to end, exit 0, show the
funnel, and leave no process or state behind."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.helpers.cli import clean_env, run_cli


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            found.append(cmd)
    return found


def test_demo_runs_end_to_end_and_cleans_up(tmp_path):
    r = run_cli("demo", env=clean_env(TMPDIR=str(tmp_path)), cwd=tmp_path, ok=True,
                timeout=240)
    out = r.stdout + r.stderr
    for expected in ("embedded stack up", "imported 6 sample customers",
                     "cart_abandoned events sent to POST /v1/events", "redeemed CART-",
                     "every cascade finished", "Who got what",
                     "messages after a recorded conversion: 0",
                     "Nobody was messaged after converting"):
        assert expected in out, expected
    assert re.search(r"converted 2 \(40\.0%\)", out)
    assert not list(tmp_path.glob("omnicascade-demo-*"))  # state removed
    assert not _processes_mentioning(str(tmp_path))  # the Temporal dev server is gone
    assert not (tmp_path / ".omnicascade").exists()  # nothing written to the cwd
