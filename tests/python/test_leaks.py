"""Reference-count leaks in the C bridge show up as RSS growth over many calls."""
import os

import numpy as np

import _hornbeam
from hornbeam_erlang import state_get, state_set


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


NESTED = {
    "big": 2**100,
    "neg": -(2**70),
    "t": (1, ("x", b"y")),
    "l": [1.5, None, True, "s" * 50],
    "arr": np.arange(16, dtype=np.float32),
    (1, 2): {"k": [b"\x00" * 10]},
}


def churn(n: int) -> None:
    enc, dec = _hornbeam.encode, _hornbeam.decode
    for _ in range(n):
        dec(enc(NESTED))


def test_one_million_conversions_do_not_leak():
    churn(50_000)  # warm up allocator pools and caches
    before = rss()
    churn(1_000_000)
    grew = rss() - before
    assert grew < 4 << 20, f"RSS grew {grew >> 10} KiB over 1,000,000 conversions"


def test_failed_conversions_do_not_leak():
    bad = {"ok": [1, 2, 3], "bad": [1, {1, 2}]}
    truncated = _hornbeam.encode(NESTED)[:-3]

    def churn_errors(n: int) -> None:
        for _ in range(n):
            try:
                _hornbeam.encode(bad)
            except TypeError:
                pass
            try:
                _hornbeam.decode(truncated)
            except ValueError:
                pass

    churn_errors(20_000)
    before = rss()
    churn_errors(300_000)
    grew = rss() - before
    assert grew < 4 << 20, f"RSS grew {grew >> 10} KiB over failing conversions"


def test_state_round_trips_do_not_leak():
    # Each state_set leaves the old value to Go's collector, which lets the
    # heap reach 5x its live size (GOGC 400) before it collects: warm up past
    # that, so what is left to see is a leak.
    for _ in range(200_000):
        state_set("leak:v", NESTED)
        state_get("leak:v")
    before = rss()
    for _ in range(300_000):
        state_set("leak:v", NESTED)
        state_get("leak:v")
    grew = rss() - before
    assert grew < 4 << 20, f"RSS grew {grew >> 10} KiB over state round trips"
