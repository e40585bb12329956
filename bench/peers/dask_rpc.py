#!/usr/bin/python3
"""Dask peer for the RPC benchmark.

Starts a dask scheduler and one single-threaded worker as separate processes
on 127.0.0.1 (the shape of a real deployment: client -> scheduler -> worker
and back), then measures from a Client in this process:
  - p50/p99 of sequential client.submit(echo, arg, pure=False).result()
  - calls/s with 32 submissions in flight (submit a batch of 32, gather it)
With Dask's stock configuration, and then the throughput once more on a
fresh scheduler with task queuing off (worker-saturation: inf): since
2022.11 the scheduler hands a worker only ~1.1 tasks per thread at a time,
which caps a 1-thread worker at a few hundred tasks/s, and a reader should
see both figures.

Prints one JSON line on stdout; diagnostics and the children's logs go to
stderr. Needs Debian's python3-distributed, run by /usr/bin/python3.
Tunables (environment): DASK_BENCH_CALLS (default 500), DASK_BENCH_SECONDS
(default 3).

Why ~11 ms a call: the Client batches its messages to the scheduler with a
hard-coded 10 ms interval (distributed/client.py, BatchedSend(interval=
"10ms")), and each sequential call sends within 10 ms of the last one.
"""

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CALLS = int(os.environ.get("DASK_BENCH_CALLS", "500"))
SECONDS = float(os.environ.get("DASK_BENCH_SECONDS", "3"))
WARMUP = 50
BATCH = 32
STARTUP_TIMEOUT = 30  # scheduler file written + worker registered
WATCHDOG = 58  # the whole run; past this we kill the children and exit 3

# Small, not an immediate: what a typical small request looks like.
ARG = ("ping", 42, b"hello, peer")

procs = []  # every child started, for stop() and the watchdog


def echo(x):
    # Defined in __main__, so cloudpickle ships it by value: the worker needs
    # no importable module.
    return x


def log(msg):
    print(f"dask_rpc: {msg}", file=sys.stderr, flush=True)


def pct(sorted_xs, p):
    # Nearest rank, as the Erlang peer computes it.
    n = len(sorted_xs)
    return sorted_xs[min(n, max(1, math.ceil(p * n))) - 1]


def stop(ps, grace=0.0):
    # Give a clean shutdown time to finish, then SIGTERM (dask closes its
    # comms on it), then SIGKILL; each by PID.
    end = time.monotonic() + grace
    while any(p.poll() is None for p in ps) and time.monotonic() < end:
        time.sleep(0.05)
    for p in reversed(ps):
        if p.poll() is None:
            p.terminate()
    for p in reversed(ps):
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def wait_for_file(path, proc, deadline):
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"scheduler exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"scheduler not ready after {STARTUP_TIMEOUT}s")
        time.sleep(0.05)


@contextlib.contextmanager
def cluster(tmp, name, config):
    """A scheduler and one worker, as processes; yields a connected Client."""
    from distributed import Client

    d = os.path.join(tmp, name)
    os.mkdir(d)
    sched_file = os.path.join(d, "scheduler.json")
    # Config reaches the children through DASK_* variables. They log at
    # warning level only, into our stderr; their own timeouts make them exit
    # if we are killed without a chance to clean up.
    env = dict(os.environ, DASK_LOGGING__DISTRIBUTED="warning", **config)
    child = dict(cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    mine = []
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        mine.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler",
             "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             # The HTTP server (health, metrics) runs even without a
             # dashboard: keep it on loopback, on a free port.
             "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", sched_file, "--idle-timeout", "120s"],
            **child))
        procs.append(mine[-1])
        wait_for_file(sched_file, mine[0], deadline)
        # --no-nanny: one process to own and stop, and no extra hop.
        mine.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker",
             "--scheduler-file", sched_file, "--host", "127.0.0.1",
             "--no-nanny", "--nthreads", "1", "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0",
             "--local-directory", d, "--death-timeout", "10s"],
            **child))
        procs.append(mine[-1])
        log(f"{name}: scheduler pid {mine[0].pid}, worker pid {mine[1].pid}")
        with Client(scheduler_file=sched_file, timeout=STARTUP_TIMEOUT) as client:
            client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
            yield client
            # Scheduler and worker exit by themselves, quietly; a SIGTERM
            # mid-run makes the worker log a CancelledError traceback.
            client.shutdown()
        stop(mine, grace=5.0)
    finally:
        stop(mine)


def latency(client):
    for _ in range(WARMUP):
        assert client.submit(echo, ARG, pure=False).result() == ARG
    ds = []
    for _ in range(CALLS):
        t0 = time.perf_counter_ns()
        r = client.submit(echo, ARG, pure=False).result()
        ds.append(time.perf_counter_ns() - t0)
        assert r == ARG
    ds.sort()
    return pct(ds, 0.50) / 1e6, pct(ds, 0.99) / 1e6


def throughput(client):
    def batch():
        fs = [client.submit(echo, ARG, pure=False) for _ in range(BATCH)]
        assert client.gather(fs) == [ARG] * BATCH

    for _ in range(5):
        batch()
    n = 0
    t0 = time.perf_counter()
    end = t0 + SECONDS
    while time.perf_counter() < end:
        batch()
        n += BATCH
    return n / (time.perf_counter() - t0)


def main():
    import dask
    import distributed

    # SIGTERM/SIGHUP become SystemExit, so the finally blocks still run.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = tempfile.mkdtemp(prefix="hb-dask-rpc.")

    # A thread, not SIGALRM: it fires even while the main thread is blocked
    # in C (a stuck result()), and kills the children before exiting.
    def watchdog():
        log(f"error: watchdog: gave up after {WATCHDOG}s")
        try:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            os._exit(3)

    dog = threading.Timer(WATCHDOG, watchdog)
    dog.daemon = True
    dog.start()
    try:
        with cluster(tmp, "stock", {}) as client:
            p50, p99 = latency(client)
            per_s = throughput(client)
        no_queuing = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "inf"}
        with cluster(tmp, "no-queuing", no_queuing) as client:
            per_s_nq = throughput(client)
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
        dog.cancel()

    out = {
        "submit_result_p50_ms": round(p50, 3),
        "submit_result_p99_ms": round(p99, 3),
        "per_s_32": round(per_s, 1),
        "per_s_32_no_queuing": round(per_s_nq, 1),
        "latency_calls": CALLS,
        "throughput_seconds": SECONDS,
        "worker_threads": 1,
        "dask_version": dask.__version__,
        "distributed_version": distributed.__version__,
        "python_version": sys.version.split()[0],
    }
    print(json.dumps(out, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line, not a traceback through dask
        log(f"error: {type(e).__name__}: {e}")
        sys.exit(1)
