"""Batched functions for test_ml (a module, as @batched wants)."""
import threading

from hornbeam_ml import batched

calls = []
_lock = threading.Lock()


@batched(max_batch_size=16, max_wait_ms=20)
def double(items, factor=2):
    with _lock:
        calls.append(len(items))
    if "boom" in items:
        raise ValueError("boom in the batch")
    return [x * factor for x in items]


@batched
def wrong_length(items):
    return items[:-1]
