"""The worker reports long full garbage collections (a cause of Temporal deadlock failures)."""

import gc
import logging

from omnicascade.runtime.gc_watch import _on_gc, freeze_startup_heap, watch_gc_pauses


def test_a_full_collection_longer_than_the_threshold_is_reported(caplog):
    watch_gc_pauses(threshold_s=0.0)
    try:
        watch_gc_pauses(threshold_s=0.0)  # installing twice keeps one callback
        assert gc.callbacks.count(_on_gc) == 1
        with caplog.at_level(logging.WARNING, logger="omnicascade.runtime.gc_watch"):
            gc.collect(1)
            assert not caplog.records  # young collections are not full ones
            gc.collect(2)
        [record] = caplog.records
        assert "full garbage collection paused the worker for" in record.getMessage()
    finally:
        gc.callbacks.remove(_on_gc)


def test_a_short_full_collection_is_not_reported(caplog):
    watch_gc_pauses(threshold_s=60.0)
    try:
        with caplog.at_level(logging.WARNING, logger="omnicascade.runtime.gc_watch"):
            gc.collect(2)
        assert not caplog.records
    finally:
        gc.callbacks.remove(_on_gc)


def _in_collected_generations(obj: object) -> bool:
    return any(o is obj for gen in range(3) for o in gc.get_objects(generation=gen))


def test_startup_objects_are_frozen_out_of_later_collections():
    before = ["alive at startup"]
    try:
        assert freeze_startup_heap() > 0
        after = ["created once work began"]
        assert not _in_collected_generations(before)  # skipped by every later collection
        assert _in_collected_generations(after)  # still collected normally
    finally:
        gc.unfreeze()
    assert _in_collected_generations(before)
