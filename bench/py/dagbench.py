"""No-op functions for the DAG benchmark (the nodes import them by name)."""


def noop(*args):
    return None


def inc(x=0):
    return x + 1


def count(*xs):
    return len(xs)
