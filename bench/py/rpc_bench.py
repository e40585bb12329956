"""rpc_call between two nodes, from Python: latency and throughput; JSON to argv[2]."""
import asyncio
import json
import statistics
import sys
import threading
import time

from hornbeam_erlang import aio, nodes, rpc_call

TARGET, OUT = sys.argv[1], sys.argv[2]
ARG = b"hello"
ROUNDS = 3
ROUND_S = 2.0


def wait_target():
    deadline = time.time() + 10
    while TARGET not in nodes():
        if time.time() > deadline:
            raise SystemExit(f"{TARGET} not seen")
        time.sleep(0.01)


def latency(n=20000):
    for _ in range(2000):
        rpc_call(TARGET, "benchmod", "echo", [ARG])
    d = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        rpc_call(TARGET, "benchmod", "echo", [ARG])
        d.append(time.perf_counter_ns() - t0)
    d.sort()
    return d[n // 2] / 1000, d[n * 99 // 100] / 1000


def threads(n_threads):
    rates = []
    for _ in range(ROUNDS):
        counts = [0] * n_threads
        stop = time.perf_counter() + ROUND_S

        def work(i):
            c = 0
            while time.perf_counter() < stop:
                rpc_call(TARGET, "benchmod", "echo", [ARG])
                c += 1
            counts[i] = c

        t0 = time.perf_counter()
        ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        rates.append(sum(counts) / (time.perf_counter() - t0))
    return statistics.median(rates)


def tasks(n_tasks):
    async def main():
        rates = []
        for _ in range(ROUNDS):
            stop = time.perf_counter() + ROUND_S
            counts = [0] * n_tasks

            async def work(i):
                c = 0
                while time.perf_counter() < stop:
                    await aio.rpc_call(TARGET, "benchmod", "echo", [ARG])
                    c += 1
                counts[i] = c

            t0 = time.perf_counter()
            await asyncio.gather(*(work(i) for i in range(n_tasks)))
            rates.append(sum(counts) / (time.perf_counter() - t0))
        return statistics.median(rates)

    return asyncio.run(main())


def main():
    wait_target()
    p50, p99 = latency()
    res = {"p50_us": p50, "p99_us": p99, "threads32": threads(32), "tasks32": tasks(32), "tasks64": tasks(64)}
    with open(OUT, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
