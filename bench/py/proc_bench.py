"""Process benchmark, run as a client node: round trips of `send`/`receive`
between two processes (on two nodes, and within this one) and one-way
messages per second. Usage: hornbeam run --name cli@... --join ... proc_bench.py SERVER OUT"""
import json
import statistics
import sys
import time

import hornbeam_erlang as he
from hornbeam_erlang import aio

MSG = ("ping", 42, b"hello, peer")


def echo():
    while True:
        frm, m = he.receive()
        he.send(frm, m)


async def aecho():
    while True:
        frm, m = await aio.receive()
        he.send(frm, m)


def counter(report, n):
    for _ in range(n):
        he.receive()
    he.send(report, "counted")


def rtt(echo_pid, n):
    me = he.self()
    for _ in range(1000):
        he.send(echo_pid, (me, MSG))
        he.receive(10000)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        he.send(echo_pid, (me, MSG))
        he.receive(10000)
        ts.append(time.perf_counter_ns() - t0)
    ts.sort()
    return ts[n // 2] / 1000, ts[n * 99 // 100] / 1000


def oneway(node, n):
    me = he.self()
    c = he.spawn(node, "proc_bench", "counter", [me, n])
    t0 = time.perf_counter()
    for _ in range(n):
        he.send(c, MSG)
    assert he.receive(120000) == "counted"
    return n / (time.perf_counter() - t0)


def main():
    srv, out = sys.argv[1], sys.argv[2]
    deadline = time.time() + 10
    while srv not in he.nodes():
        if time.time() > deadline:
            raise SystemExit(f"{srv} not seen")
        time.sleep(0.02)
    sys.modules.setdefault("proc_bench", sys.modules["__main__"])
    n = 10000
    res = {}
    res["remote_rtt_p50_us"], res["remote_rtt_p99_us"] = rtt(he.spawn(srv, "proc_bench", "echo"), n)
    res["remote_task_rtt_p50_us"], res["remote_task_rtt_p99_us"] = rtt(he.spawn(srv, "proc_bench", "aecho"), n)
    res["local_rtt_p50_us"], res["local_rtt_p99_us"] = rtt(he.spawn(he.node(), "proc_bench", "echo"), n)
    res["local_task_rtt_p50_us"], res["local_task_rtt_p99_us"] = rtt(he.spawn(he.node(), "proc_bench", "aecho"), n)
    res["remote_oneway_per_s"] = statistics.median(oneway(srv, 100000) for _ in range(3))
    res["local_oneway_per_s"] = statistics.median(oneway(he.node(), 100000) for _ in range(3))
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
