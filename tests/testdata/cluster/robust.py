"""Functions the robustness tests call: stuck, fast, batched, huge and counted work."""
import time

import hornbeam_ml
from hornbeam_erlang import state_get, state_incr


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def fast(x):
    return x


def encode(texts):
    """Calls the host-batched model, as examples/distributed_ml/ml_worker.py does."""
    return [float(v[0]) for v in hornbeam_ml.encode(list(texts))]


def count(key, seconds=0.0, payload=None):
    if seconds:
        time.sleep(seconds)
    state_incr(key)


def counted(key):
    return state_get(key) or 0


_big = b""


def big(n):
    """n bytes, built once: on a loaded machine building 400 MiB takes seconds,
    and what is timed is the refusal of the reply, not the building."""
    global _big
    if len(_big) != n:
        _big = b"x" * n
    return _big


def boom():
    raise ValueError("cast boom")


def self_casts(n, seconds, stall=0):
    """Casts n counted calls to this node itself, after 8 casts that keep its
    threads busy for stall seconds; returns how many were Busy."""
    from hornbeam_erlang import Busy, node, rpc_cast
    for _ in range(8):
        rpc_cast(node(), "robust", "sleep", [stall])
    busy = 0
    for _ in range(n):
        try:
            rpc_cast(node(), "robust", "count", ["self", seconds])
        except Busy:
            busy += 1
    return busy
