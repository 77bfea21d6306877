"""Report long garbage-collection pauses in a worker process.

A full (generation 2) collection stops every thread of the process while it walks every
tracked object; with tens of thousands of cascades cached that is a large heap, and a pause
near Temporal's 2 s deadlock limit makes the SDK fail a workflow task that was merely
waiting. Logging each long pause (a WARNING with its length) lets an operator tie such
failures to the heap and lower OMNICASCADE_WORKER_MAX_CACHED_WORKFLOWS.

The pause grows with the number of tracked objects (measured: ≈ 150 per cached cascade,
60–110 µs of full-collection time each on an idle core, 3–5× that with both cores busy),
so the worker bounds it two ways: its cache (config) and `freeze_startup_heap`, which
takes the objects that live as long as the process (modules, the client, the worker)
out of every later collection.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

_started: float | None = None  # when the running full collection began
_threshold_s = 0.5


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _started
    if info.get("generation") != 2:
        return
    if phase == "start":
        _started = time.perf_counter()
    elif _started is not None:
        paused, _started = time.perf_counter() - _started, None
        if paused >= _threshold_s:
            log.warning("a full garbage collection paused the worker for %.2f s "
                        "(%d objects freed)", paused, info.get("collected", 0))


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now to the permanent generation, which
    later collections skip. Call after startup, before work: what exists then (imports,
    the client, the worker) lives as long as the process. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def watch_gc_pauses(threshold_s: float = 0.5) -> None:
    """Install the watcher once per process; later calls only change the threshold."""
    global _threshold_s
    _threshold_s = threshold_s
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
