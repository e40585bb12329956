"""Targets for the Go->Python call benchmarks."""


def noop():
    return None


async def anoop():
    return None
