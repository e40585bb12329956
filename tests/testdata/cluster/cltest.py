"""Functions the cluster tests call on their nodes."""
import asyncio
import os
import time

from hornbeam_erlang import node, rpc_call, state_get, state_set


def whoami():
    return node()


def add(a, b):
    return a + b


async def async_add(a, b):
    await asyncio.sleep(0.001)
    return a + b


async def async_echo(x, delay):
    await asyncio.sleep(delay)
    return x


def relay(target, module, function, args):
    """Calls target from this node: a call in that direction."""
    return rpc_call(target, module, function, args, 5000)


def sleep(seconds):
    time.sleep(seconds)
    return node()


def boom(msg):
    raise ValueError(msg)


def big(n):
    return b"x" * n


def pid():
    return os.getpid()


def remember(key, value):
    state_set(key, value)


def recall(key):
    return state_get(key)
