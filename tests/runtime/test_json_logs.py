"""OMNICASCADE_LOG_FORMAT=json as a process sets it up (configure_logging): every line on
stderr is one JSON object with time, level, logger and message, plus the ids of the work
where known — `extra=` or the deliver activity's context — and a traceback as text."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from omnicascade.runtime.deploy import configure_logging
from omnicascade.telemetry import LOG_IDS
configure_logging("json")
log = logging.getLogger("omnicascade.test")
log.info("plain")
LOG_IDS.set({"enrollment_id": "enr_1", "step": "step 1", "channel": "sms"})
log.warning("send failed", extra={"run_id": "run_1"})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
"""


def test_json_lines_parse_and_carry_the_ids():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [x["message"] for x in lines] == ["plain", "send failed", "boom"]
    assert lines[0].keys() == {"time", "level", "logger", "message"}
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "omnicascade.test"
    assert lines[0]["time"].endswith("Z")
    assert {k: lines[1][k] for k in ("run_id", "enrollment_id", "step", "channel")} == {
        "run_id": "run_1", "enrollment_id": "enr_1", "step": "step 1", "channel": "sms"}
    assert "ZeroDivisionError" in lines[2]["exception"]


def test_text_stays_the_default():
    script = SCRIPT.replace('configure_logging("json")', "configure_logging()")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)
    assert " INFO omnicascade.test: plain" in out.stderr.splitlines()[0]
