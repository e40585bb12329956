"""hornbeam_dist on one node: Router, HashRouter key movement, async_call.
Between nodes: tests/dist_test.go."""
import asyncio
import concurrent.futures as cf
import time

import pytest

import hornbeam_erlang as he
from hornbeam_dist import HashRouter, NoRoute, Router, Task, async_call

ME = he.node()


def test_router_matchers():
    r = Router([("a-m", "x@h"), (range(ord("n"), ord("z") + 1), "y@h"), (lambda k: k == "0", "z@h"), ("A", "w@h")],
               "t_matchers")
    assert r.lookup("apple") == "x@h" and r.lookup("zoo") == "y@h" and r.lookup(b"mango") == "x@h"
    assert r.lookup("0") == "z@h" and r.lookup("Apple") == "w@h"
    with pytest.raises(NoRoute, match=r"could not find entry for 'Zebra' in table"):
        r.lookup("Zebra")
    with pytest.raises(NoRoute):
        r.lookup("")
    assert isinstance(NoRoute("x"), LookupError)
    with pytest.raises(ValueError):
        Router([("abc", "x@h")], "bad")
    with pytest.raises(TypeError):
        Router([(1, "x@h")], "bad")


def test_router_runs_here_when_the_entry_is_this_node():
    r = Router([("a-z", ME)], "t_here")
    assert r.route("hello", "operator", "add", [1, 2]) == 3


@pytest.mark.parametrize("n", [3, 5, 10])
def test_hash_router_moves_about_one_nth_of_the_keys(n):
    names = [f"n{i}@10.0.0.{i}" for i in range(n + 1)]
    before = HashRouter("t", nodes=names[:n])
    after = HashRouter("t", nodes=names)  # one node joins
    keys = [f"key-{i}" for i in range(20000)]
    moved = sum(before.lookup(k) != after.lookup(k) for k in keys) / len(keys)
    expected = 1 / (n + 1)
    assert expected * 0.6 < moved < expected * 1.4, (moved, expected)
    # every moved key went to the newcomer; leaving moves them back
    assert all(after.lookup(k) == names[n] for k in keys if before.lookup(k) != after.lookup(k))
    # spread: no node owns more than twice its share
    counts = {}
    for k in keys:
        counts[after.lookup(k)] = counts.get(after.lookup(k), 0) + 1
    assert max(counts.values()) < 2 * len(keys) / (n + 1)


def test_hash_router_live_nodes_without_a_cluster_is_this_node():
    r = HashRouter("t_live")
    assert r.nodes() == [ME]
    assert r.route(b"k", "operator", "mul", [3, 4]) == 12


def test_async_call_here_is_a_future_and_awaitable():
    t = async_call(ME, "operator", "add", [2, 3])
    assert isinstance(t, cf.Future) and isinstance(t, Task)
    assert t.result(5) == 5
    ts = [async_call(ME, "time", "sleep", [0.05 * i]) for i in range(4)]
    assert len(list(cf.as_completed(ts, timeout=5))) == 4

    async def main():
        return await async_call(ME, "operator", "mul", [6, 7])

    assert asyncio.run(main()) == 42
    with pytest.raises(he.BadRPC):
        async_call(ME, "operator", "nope").result(5)
    with pytest.raises(he.RemoteError):
        async_call(ME, "operator", "truediv", [1, 0]).result(5)
    with pytest.raises(he.RPCTimeout):
        async_call(ME, "time", "sleep", [2], timeout_ms=50).result(5)


def test_async_call_cancel():
    t = async_call(ME, "asyncio", "sleep", [30])
    time.sleep(0.05)
    assert t.cancel() and t.cancelled()
    with pytest.raises(cf.CancelledError):
        t.result(1)


def test_cancelling_an_awaiting_asyncio_task_cancels_the_call():
    async def main():
        t = async_call(ME, "asyncio", "sleep", [30])

        async def waiter():
            return await t

        w = asyncio.ensure_future(waiter())
        await asyncio.sleep(0.05)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        return t

    t = asyncio.run(main())
    deadline = time.time() + 5
    while not t.cancelled() and time.time() < deadline:
        time.sleep(0.01)
    assert t.cancelled()
