"""Run every pattern of the Distributed RPC guide against a running cluster.

Start the cluster as README.md shows (gpu1, worker1, worker2 and logger, all with
--pythonpath examples/rpc), then run this script as a node of it:

    bin/hornbeam run --name web@127.0.0.1 --join 127.0.0.1:4370 --cookie demo \
        --pythonpath examples/rpc examples/rpc/demo.py

Pass ``--slow`` to also see cluster_health report a node that times out (5 s).
It prints what each pattern did and exits 1 if something was not as expected.
"""

import sys
import time
from collections import Counter

from hornbeam_dist import connect
from hornbeam_erlang import NodeDown, RemoteError, node, nodes, ping, rpc_call, state_get

import embedding_model
import inference
import patterns

HOST = "127.0.0.1"
GPU, W1, W2, LOGGER = (f"{n}@{HOST}" for n in ("gpu1", "worker1", "worker2", "logger"))
ALL = [GPU, W1, W2, LOGGER]


def section(title):
    print(f"\n== {title}", flush=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"demo: unexpected: {what}")


def fault(target_node, target, spec):
    rpc_call(target_node, "faults", "inject", [target, spec])


def calls(target_node, target):
    return rpc_call(target_node, "faults", "calls", [target])


def main():
    slow = "--slow" in sys.argv[1:]

    section("cluster")
    print(f"this node: {node()}")
    patterns.wait_for_nodes(*ALL, timeout=15)
    print(f"connect({GPU!r}) -> {connect(GPU)}")
    for n in ALL:
        print(f"ping({n!r}) -> {ping(n)!r}")
    print(f"nodes() -> {nodes()}")
    for n in ALL:
        rpc_call(n, "faults", "reset", [])

    section("get_embedding: the first gpu node encodes")
    emb = patterns.get_embedding("hello world")
    print(f"served by {emb['node']}: {emb['vector'][:4]}...")
    check(emb["node"] == GPU and emb["vector"] == embedding_model.encode("hello world"), emb)
    batch = rpc_call(GPU, "ml", "batch_encode", [["a", "b", "c"]], 30000)
    print(f"batch_encode of 3 texts in one call -> {len(batch)} vectors from {batch[0]['node']}")

    section("balanced_inference: random worker, failover, local fallback")
    served = Counter(patterns.balanced_inference(f"request-{i}")["node"] for i in range(12))
    print(f"12 requests served by {dict(served)}")
    check(set(served) <= {W1, W2}, served)

    section("parallel_inference: items split across the workers")
    results = patterns.parallel_inference(list(range(10)))
    per_node = Counter(r["node"] for r in results)
    print(f"{len(results)} items processed: {dict(per_node)}")
    check(sorted(r["item"] for r in results) == list(range(10)) and set(per_node) == {W1, W2}, results)

    section("safe_rpc: retries with a growing timeout, then raises the last error")
    rpc_call(W1, "faults", "reset", [])
    fault(W1, "inference.run", {"sleep": 1.0})
    t0 = time.monotonic()
    try:
        patterns.safe_rpc(W1, "inference", "run", ["x"], timeout=200, retries=3)
        check(False, "safe_rpc to a slow node returned")
    except TimeoutError as e:
        print(f"{W1} (sleeps 1 s, timeouts 200/300/450 ms): {type(e).__name__}: {e} "
              f"after {time.monotonic() - t0:.2f}s, {calls(W1, 'inference.run')} attempts")
    fault(W1, "inference.run", None)
    try:
        patterns.safe_rpc(f"ghost@{HOST}", "inference", "run", ["x"], retries=3)
        check(False, "safe_rpc to an unknown node returned")
    except ConnectionError as e:
        print(f"ghost@{HOST}: {type(e).__name__}: {e}")
        check(isinstance(e, NodeDown), e)

    section("resilient_call: the first gpu node that answers a ping")
    r = patterns.resilient_call("gpu", "encode", ["failover"])
    print(f"resilient_call('gpu', 'encode', ...) served by {r['node']}")
    try:
        patterns.resilient_call("tpu", "encode", ["x"])
    except RuntimeError as e:
        print(f"resilient_call('tpu', ...) -> {e}")

    section("CircuitBreaker: opens after 3 failures, resets after 1 s")
    breaker = patterns.CircuitBreaker(W2, threshold=3, reset_timeout=1)
    rpc_call(W2, "faults", "reset", [])
    fault(W2, "inference.run", {"raise": "model crashed"})
    for i in range(3):
        try:
            breaker.call("inference", "run", [i])
        except RemoteError as e:
            print(f"call {i + 1}: {type(e).__name__}: {e.message}")
    try:
        breaker.call("inference", "run", [3])
        check(False, "open circuit let a call through")
    except RuntimeError as e:
        print(f"call 4: {e} ({W2} saw {calls(W2, 'inference.run')} calls)")
        check(str(e) == f"Circuit open for {W2}", e)
    print(f"state {breaker.key!r} -> {state_get(breaker.key)}")
    fault(W2, "inference.run", None)
    time.sleep(1.1)
    r = breaker.call("inference", "run", ["after reset"])
    print(f"after reset_timeout: served by {r['node']}, state -> {state_get(breaker.key)}")

    section("cluster_health")
    fault(W2, "health.check", {"raise": "disk full"})
    if slow:
        fault(W1, "health.check", {"sleep": 6.0})
    health = patterns.cluster_health()
    for n, h in sorted(health.items()):
        print(f"{n:22} {h['status']:8} {h.get('error') or h.get('load1', '')}")
    check(health[GPU]["status"] == "healthy" and health[W2]["status"] == "error", health)
    fault(W2, "health.check", None)
    fault(W1, "health.check", None)

    section("get_embedding_with_fallback")
    r = patterns.get_embedding_with_fallback("fallback")
    print(f"served by {r['node']}")

    section("fire-and-forget audit log (rpc_cast)")
    t0 = time.monotonic()
    patterns.audit_login(123, "10.0.0.7", logger=LOGGER)
    print(f"rpc_cast returned in {1000 * (time.monotonic() - t0):.1f} ms")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = [e for e in rpc_call(LOGGER, "audit_log", "entries", []) if e["data"].get("ip") == "10.0.0.7"]
        if logged:
            break
        time.sleep(0.05)
    check(logged, "the audit record did not reach the logger")
    print(f"{LOGGER} recorded: {logged[-1]['event']} {logged[-1]['data']}")

    local = inference.run("local")
    print(f"\n(local inference runs on {local['node']})\ndemo: all patterns ran as expected")


if __name__ == "__main__":
    main()
