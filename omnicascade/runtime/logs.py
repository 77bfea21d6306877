"""OMNICASCADE_LOG_FORMAT=json: one JSON object per line, for a log pipeline to index.

Each line has time (ISO 8601, UTC), level, logger and message, and the ids of the work it
is about where they are known: run_id, enrollment_id, step, channel — set for the duration
of a send by the deliver activity (telemetry.LOG_IDS) or passed as `extra`. Only ids: the
code logs no address, name or message body in any format (a test sends to a distinctive
address and greps the captured log), and an exception's traceback is included as text as
the text format would print it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from omnicascade.telemetry import LOG_IDS

IDS = ("run_id", "enrollment_id", "step", "channel")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name,
            "message": record.getMessage()}
        for key, value in (LOG_IDS.get() or {}).items():
            line[key] = value
        for key in IDS:  # an explicit `extra=` wins over the context
            if isinstance(getattr(record, key, None), str):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
