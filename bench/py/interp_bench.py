"""The same Python work timed in whichever interpreter runs this file: a
node's (``hornbeam run``) or Debian's ``python3``. Prints one JSON line.

Two workloads: plain Python (dicts, tuples, str, small objects) and the
FastAPI route of httpapps.py driven in-process without a server. Each figure
is the median, over ROUNDS rounds, of the thread CPU time per iteration, so
that another process sharing the CPU does not count.
"""
import asyncio
import json
import statistics
import sys
import time

from httpapps import fastapi_items

ROUNDS = 7


def plain(n: int) -> int:
    class Point:
        __slots__ = ("x", "y")

        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y

    d: dict = {}
    total = 0
    for i in range(n):
        d[i & 255] = (i, str(i))
        p = Point(i, i + 1)
        total += p.x + p.y + len(d[i & 255][1])
    return total


def scope() -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/items/5",
        "raw_path": b"/items/5", "query_string": b"q=x", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def fastapi_requests(n: int) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list = []

    async def send(message: dict) -> None:
        sent.append(message)

    for _ in range(n):
        await fastapi_items(scope(), receive, send)
        if sent[-1].get("body") != b'{"item_id":5,"q":"x"}':
            raise SystemExit(f"unexpected response {sent[-1]!r}")
        sent.clear()


def per_iteration(run, n: int) -> float:
    run(n // 10)  # warm-up
    times = []
    for _ in range(ROUNDS):
        t = time.thread_time()
        run(n)
        times.append((time.thread_time() - t) / n)
    return statistics.median(times)


def main() -> None:
    res = {
        "plain_ns": per_iteration(plain, 200_000) * 1e9,
        "fastapi_us": per_iteration(lambda n: asyncio.run(fastapi_requests(n)), 2_000) * 1e6,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
