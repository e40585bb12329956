"""cached_inference: results kept in the node's bounded LRU cache (in Go)."""

import hashlib
import pickle
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import _hornbeam

_call = _hornbeam.call


def stable_key(data: Any) -> str:
    """A key for ``data`` that is the same in every process and on every run.

    Python's ``hash`` is randomised per process, so it cannot name a cache
    entry shared by workers or kept across restarts. Values that CBOR can carry
    (str, bytes, numbers, lists, dicts, numpy arrays) are hashed from their CBOR
    bytes; others from their pickle.
    """
    try:
        raw = _hornbeam.encode(data)
    except (TypeError, ValueError, OverflowError):
        raw = pickle.dumps(data, protocol=5)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def cached_inference(fn: Callable[[Any], Any], input_data: Any, cache_key: Optional[str] = None,
                     cache_prefix: str = "ml", ttl: Optional[float] = None) -> Any:
    """Return ``fn(input_data)``, computing it only if the node has not cached it.

    The key is ``cache_key`` or a stable hash of ``input_data`` (see
    ``stable_key``), under ``cache_prefix``. Results are pickled, so a hit
    returns an object of the same type as the miss did (numpy arrays, tuples
    and ``None`` included). ``ttl`` (seconds) bounds an entry's life; the cache
    itself is bounded by entries and bytes (``--ml-cache-entries``,
    ``--ml-cache-mib``) and evicts the least recently used. A result too big
    for the cache, or one that cannot be pickled, is returned uncached.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    if not isinstance(cache_prefix, str) or not cache_prefix:
        raise TypeError("cache_prefix must be a non-empty str")
    if cache_key is None:
        cache_key = stable_key(input_data)
    elif not isinstance(cache_key, str):
        raise TypeError(f"cache_key must be a str or None, not {type(cache_key).__name__}")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
        raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    hit = _call("ml_cache_get", cache_prefix, cache_key)
    if hit is not None:
        return pickle.loads(hit)
    result = fn(input_data)
    try:
        blob = pickle.dumps(result, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):
        return result
    try:
        _call("ml_cache_put", cache_prefix, cache_key, blob, None if ttl is None else float(ttl))
    except MemoryError:
        pass  # larger than the whole cache: the caller still gets its result
    return result


def cached_inference_batch(fn: Callable[[List[Any]], Sequence[Any]], inputs: Sequence[Any],
                           cache_prefix: str = "ml", ttl: Optional[float] = None) -> Tuple[List[Any], int]:
    """``cached_inference`` for a list: one ``fn(misses)`` call for every input
    not cached (``fn`` takes a list and returns a list of the same length).
    Returns ``(results in input order, how many came from the cache)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    if not isinstance(cache_prefix, str) or not cache_prefix:
        raise TypeError("cache_prefix must be a non-empty str")
    keys = [stable_key(x) for x in inputs]
    results: List[Any] = [None] * len(keys)
    missing = []
    for i, k in enumerate(keys):
        hit = _call("ml_cache_get", cache_prefix, k)
        if hit is None:
            missing.append(i)
        else:
            results[i] = pickle.loads(hit)
    if missing:
        computed = fn([inputs[i] for i in missing])
        if len(computed) != len(missing):
            raise ValueError(f"fn returned {len(computed)} results for {len(missing)} inputs")
        for i, r in zip(missing, computed):
            results[i] = r
            try:
                _call("ml_cache_put", cache_prefix, keys[i], pickle.dumps(r, protocol=5),
                      None if ttl is None else float(ttl))
            except (MemoryError, pickle.PicklingError, TypeError):
                pass
    return results, len(keys) - len(missing)


def _rates(s: Dict[str, int]) -> Dict[str, Any]:
    looked = s["hits"] + s["misses"]
    return {"hits": s["hits"], "misses": s["misses"], "hit_rate": s["hits"] / looked if looked else 0.0,
            "size": s["size"], "evictions": s["evictions"], "bytes": s["bytes"]}


def cache_stats() -> Dict[str, Any]:
    """The node's cache counters: ``hits``, ``misses``, ``hit_rate``, ``size``
    (entries), ``evictions`` and ``bytes`` in total, the same per prefix under
    ``prefixes``, and the bounds (``max_entries``, ``max_bytes``)."""
    st = _call("ml_cache_stats")
    out = _rates(st["total"])
    out["prefixes"] = {p: _rates(s) for p, s in sorted(st["prefixes"].items())}
    out["max_entries"] = st["max_entries"]
    out["max_bytes"] = st["max_bytes"]
    return out


def cache_clear(cache_prefix: Optional[str] = None) -> None:
    """Drop the cached results of ``cache_prefix`` (all of them if None) and their counters."""
    if cache_prefix is not None and not isinstance(cache_prefix, str):
        raise TypeError("cache_prefix must be a str or None")
    _call("ml_cache_clear", cache_prefix or "")
