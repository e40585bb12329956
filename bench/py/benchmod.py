"""Targets for the Go->Python call benchmarks."""


def noop():
    return None


async def anoop():
    return None


def echo(x):
    return x


async def aecho(x):
    return x
