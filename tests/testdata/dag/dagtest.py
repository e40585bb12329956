"""Functions for the DAG tests: each says where and when it ran."""

import os
import tempfile
import time

from hornbeam_erlang import node


def noop(*args):
    return None


def inc(x=0):
    return x + 1


def count(*xs):
    return len(xs)


def where(*args):
    """[node, args]: the node this ran on."""
    return [node(), list(args)]


def span(*args):
    """Sleeps the last argument's seconds; returns [node, start, end]."""
    t0 = time.time()
    time.sleep(args[-1])
    return [node(), t0, time.time()]


def big(n):
    return b"x" * n


def size(b):
    return [node(), len(b)]


def step(*args):
    """(inputs..., delay, markdir, tag): sum(inputs) + 1 after delay; leaves
    files in markdir, NODE-TAG-start-* and NODE-TAG-end-*, so a test can see
    where work runs."""
    *inputs, delay, markdir, tag = args
    fd, _ = tempfile.mkstemp(prefix=f"{node()}-{tag}-start-", dir=markdir)
    os.close(fd)
    time.sleep(delay)
    fd, _ = tempfile.mkstemp(prefix=f"{node()}-{tag}-end-", dir=markdir)
    os.close(fd)
    return sum(inputs) + 1


def fail_on(bad, x=0):
    """Raises on the node named bad, else returns [node, x + 1]."""
    if node() == bad:
        raise RuntimeError(f"failing on {bad}")
    return [node(), x + 1]


def always_fails(*args):
    raise ValueError("always")


def set_sweep(seconds):
    """How long a DAG run may sit idle on this node before its driver is asked."""
    import hornbeam_dag._executor as ex
    ex.SWEEP_S = seconds
