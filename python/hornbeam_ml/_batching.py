"""@batched: concurrent calls coalesced by the host (in Go) into fewer calls."""

import functools
import importlib
import inspect
from typing import Any, Callable, Dict, List, Tuple

import _hornbeam

_call = _hornbeam.call
_registry: Dict[Tuple[str, str], Callable[..., Any]] = {}


def batched(fn: Callable[..., Any] = None, *, max_batch_size: int = 64, max_wait_ms: float = 5) -> Any:
    """Mark ``fn(items, *args)`` (a list in, a list of the same length out) as batched.

    Concurrent calls, from this node's threads or as ``rpc_call`` from other
    nodes, are queued in the host: their items are concatenated into one call
    of at most ``max_batch_size`` items (a larger call goes alone), made when
    the batch is full, when its first item has waited ``max_wait_ms``, or when
    the previous batch of ``fn`` ends. Each caller gets its own results, in
    order; an exception fails only the calls of its batch. Calls whose other
    arguments differ are batched apart. ``fn.direct`` calls ``fn`` unbatched.

    Use as ``@batched`` or ``@batched(max_batch_size=32, max_wait_ms=2)``;
    ``fn`` must be a module-level function.
    """
    if fn is None:
        return functools.partial(batched, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an int of at least 1, not {max_batch_size!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) or max_wait_ms < 0:
        raise ValueError(f"max_wait_ms must be a number of at least 0, not {max_wait_ms!r}")
    module, name = fn.__module__, fn.__qualname__
    sig = inspect.signature(fn)
    _registry[(module, name)] = fn
    _call("ml_batch_register", module, name, max_batch_size, float(max_wait_ms))

    @functools.wraps(fn)
    def wrapper(items: Any, *args: Any, **kwargs: Any) -> List[Any]:
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise TypeError(f"{name}() takes a list of items first, not {type(items).__name__}")
        bound = sig.bind(items, *args, **kwargs)
        bound.apply_defaults()
        if bound.kwargs:
            raise TypeError(f"{name}(): keyword-only arguments cannot be batched")
        if not items:
            return []
        return _call("ml_batch", module, name, list(items), *bound.args[1:])

    wrapper.direct = fn  # type: ignore[attr-defined]
    return wrapper


def run_batch(module: str, function: str, extra: List[Any], items: List[Any]) -> List[Any]:
    """Run one batch (called by the host)."""
    fn = _registry.get((module, function))
    if fn is None:
        importlib.import_module(module)  # registers it
        fn = _registry[(module, function)]
    out = fn(items, *extra)
    try:
        n = len(out)
    except TypeError:
        raise TypeError(f"batched {module}.{function} returned {type(out).__name__}, not a list") from None
    if n != len(items):
        raise ValueError(f"batched {module}.{function} returned {n} results for {len(items)} items")
    return list(out)


def batch_stats() -> Dict[str, int]:
    """How many batches this process's batched functions ran, and how many items they held."""
    return _call("ml_batch_stats")
