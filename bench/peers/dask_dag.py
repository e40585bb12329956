#!/usr/bin/python3
"""Dask peer for the DAG benchmark: per-function scheduling overhead.

Starts a dask scheduler and 3 single-threaded workers as separate processes
on 127.0.0.1 (--no-nanny), then hands the scheduler whole task graphs of
no-op functions with ``client.get(graph, keys)`` (the graph submitted at
once, as execute_distributed gets it) and times each to its result:
  - wide: one source, WIDE functions that take it, one sink taking them all
  - chain: CHAIN functions, each taking the previous one's result
The figure is wall time over the number of functions, median of ROUNDS.

Prints one JSON line on stdout; diagnostics go to stderr. Needs Debian's
python3-distributed, run by /usr/bin/python3. Environment: DAG_BENCH_WIDE
(default 5000), DAG_BENCH_CHAIN (default 1000), DAG_BENCH_ROUNDS (default 3).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WIDE = int(os.environ.get("DAG_BENCH_WIDE", "5000"))
CHAIN = int(os.environ.get("DAG_BENCH_CHAIN", "1000"))
ROUNDS = int(os.environ.get("DAG_BENCH_ROUNDS", "3"))
WORKERS = 3
WATCHDOG = 170

procs = []


def noop(*args):
    return None


def inc(x=0):
    return x + 1


def count(*xs):
    return len(xs)


def log(msg):
    print(f"dask_dag: {msg}", file=sys.stderr, flush=True)


def stop(ps):
    for p in reversed(ps):
        if p.poll() is None:
            p.terminate()
    for p in reversed(ps):
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


# Keys are new every round: the scheduler would otherwise answer from results
# it still holds for the client.
def wide_graph(n, p):
    g = {f"{p}s": (noop,)}
    for i in range(n):
        g[f"{p}w{i}"] = (noop, f"{p}s")
    g[f"{p}sink"] = (count,) + tuple(f"{p}w{i}" for i in range(n))
    return g, f"{p}sink", n + 2


def chain_graph(n, p):
    g = {f"{p}c0": (inc,)}
    for i in range(1, n):
        g[f"{p}c{i}"] = (inc, f"{p}c{i - 1}")
    return g, f"{p}c{n - 1}", n


def main():
    from distributed import Client
    import distributed

    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(143)))
    tmp = tempfile.mkdtemp(prefix="hb-dask-dag.")

    def watchdog():
        log(f"error: watchdog: gave up after {WATCHDOG}s")
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(3)

    dog = threading.Timer(WATCHDOG, watchdog)
    dog.daemon = True
    dog.start()
    sched_file = os.path.join(tmp, "scheduler.json")
    env = dict(os.environ, DASK_LOGGING__DISTRIBUTED="warning")
    child = dict(cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--scheduler-file", sched_file,
             "--idle-timeout", "180s"], **child))
        deadline = time.monotonic() + 30
        while not os.path.exists(sched_file):
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError("scheduler did not start")
            time.sleep(0.05)
        for _ in range(WORKERS):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", sched_file,
                 "--host", "127.0.0.1", "--no-nanny", "--nthreads", "1", "--no-dashboard",
                 "--dashboard-address", "127.0.0.1:0", "--local-directory", tmp, "--death-timeout", "10s"],
                **child))
        out = {"dask_version": distributed.__version__, "workers": WORKERS}
        with Client(scheduler_file=sched_file, timeout=30) as client:
            client.wait_for_workers(WORKERS, timeout=30)
            for name, make, n in [("wide", wide_graph, WIDE), ("chain", chain_graph, CHAIN)]:
                wg, wk, _ = make(50, f"warm-{name}-")
                client.get(wg, wk)
                per = []
                for rnd in range(ROUNDS):
                    g, key, nfun = make(n, f"r{rnd}-{name}-")
                    t0 = time.perf_counter()
                    r = client.get(g, key)
                    per.append((time.perf_counter() - t0) / nfun * 1e6)
                    assert r == n, r
                out[f"{name}_us_per_function"] = statistics.median(per)
                out[f"{name}_functions"] = nfun
                log(f"{name}: {per}")
            client.shutdown()
        print(json.dumps(out))
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
