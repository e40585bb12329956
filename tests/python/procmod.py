"""Process bodies for test_process.py (spawn takes module and function names)."""
import asyncio
import time

import hornbeam_erlang as he
from hornbeam_erlang import aio


def echo():
    while True:
        m = he.receive()
        if m == "stop":
            return
        he.send(m[0], ("echo", m[1]))


async def aecho(n):
    for _ in range(n):
        m = await aio.receive()
        he.send(m[0], ("aecho", m[1]))


def crash(msg="boom"):
    raise ValueError(msg)


async def acrash():
    raise KeyError("k")


def crash_when_told(msg="boom"):
    """Raises once it receives a message: a monitor set after spawn sees the crash."""
    he.receive()
    raise ValueError(msg)


async def acrash_when_told():
    await he.aio.receive()
    raise KeyError("k")


def wait_forever():
    he.receive()


async def await_forever():
    await aio.receive()


async def sleep_forever(report):
    he.send(report, ("started", he.self()))
    await asyncio.sleep(3600)


def trapper(report):
    he.trap_exit(True)
    he.send(report, ("ready", he.self()))
    while True:
        m = he.receive()
        he.send(report, m)


def selective(report):
    he.send(report, ("ready", he.self()))
    first = he.receive(match=lambda m: m[0] == "b")
    rest = [he.receive(0) for _ in range(2)]
    he.send(report, [first] + rest)


def sink():
    time.sleep(3600)


async def parked(report):
    await aio.receive()
    he.send(report, "done")


async def loop_receive():
    """On the node's event loop: a blocking receive is refused, a poll is not."""
    try:
        he.receive(100)
        return False
    except RuntimeError:
        pass
    try:
        he.receive(0)
    except he.ReceiveTimeout:
        return True
    return False
