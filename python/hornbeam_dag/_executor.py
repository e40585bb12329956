"""The node side of execute_distributed: runs functions the driver sends, keeps
their results here, and hands them to the nodes whose functions need them.

Results live in a per-process table keyed by run id, so they never pass through
the driver. A run's results go when its driver releases the run, when the
driver asks to drop results no function needs any more, or when the driver's
node goes down. At most ``MAX_RESULTS`` results are kept per process
(MemoryError beyond).
"""

import asyncio
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

import _hornbeam

import hornbeam_erlang
from hornbeam_erlang import NodeDown, RPCTimeout

from ._dag import resolve

MAX_RESULTS = 1_000_000

_lock = threading.Lock()
_runs: Dict[str, Dict[int, Any]] = {}  # run id -> {function index: result}
_drivers: Dict[str, Set[str]] = {}  # driver node -> its runs here
_run_driver: Dict[str, str] = {}
_watched: Set[str] = set()
_released: Deque[str] = deque(maxlen=4096)  # runs ended here: late calls for them are refused
_released_set: Set[str] = set()
_last: Dict[str, float] = {}  # run id -> when a call last touched it here
_sweeping = False
# A run no call has touched for this long is checked with its driver (gone, or
# no longer driving it: released). Seconds.
SWEEP_S = 30.0
_count = 0
_peak = 0
_fns: Dict[Tuple[str, str], Callable[..., Any]] = {}
_me = _hornbeam.node()


def _driver_event(event: str, node: str) -> None:
    # Not released at once: on a loaded machine a live driver can be reported
    # down for a moment. The sweeper asks it at its next pass, within a
    # second, and releases what it does not answer for twice.
    if event == "nodedown":
        with _lock:
            for r in _drivers.get(node, ()):
                _last[r] = 0.0


def _open(run_id: str, driver: str) -> Optional[Dict[int, Any]]:
    global _sweeping
    with _lock:
        if run_id in _released_set:
            return None
        _last[run_id] = time.monotonic()
        sweep = not _sweeping
        _sweeping = True
        store = _runs.get(run_id)
        if store is None:
            store = _runs[run_id] = {}
            _drivers.setdefault(driver, set()).add(run_id)
            _run_driver[run_id] = driver
        watch = driver != _me and driver not in _watched
        if watch:
            _watched.add(driver)
    if watch:
        # A driver's calls can arrive before its first heartbeat does, and
        # monitor_node reports a node it does not know as down at once: watch
        # it from a call that comes once it is known.
        if driver in hornbeam_erlang.nodes("connected"):
            hornbeam_erlang.monitor_node(driver, _driver_event)
        else:
            with _lock:
                _watched.discard(driver)
    if sweep:
        # On the node's event loop, as a task: it ends with the node.
        try:
            hornbeam_erlang.rpc_cast(_me, __name__, "_sweep", [])
        except Exception:
            _sweeping = False  # try again with the next call
    return store


async def _sweep() -> None:
    """Ends runs whose driver no longer drives them: a node cut off from its
    driver mid-run (its work redone elsewhere) keeps no results once it is
    back, and one that missed the driver's release frees them anyway."""
    from hornbeam_erlang import aio

    unanswered: Dict[str, int] = {}  # run -> checks its driver did not answer
    while True:
        await asyncio.sleep(min(SWEEP_S / 2, 1.0))
        now = time.monotonic()
        idle: Dict[str, List[str]] = {}
        with _lock:
            for r, t in _last.items():
                if now - t >= SWEEP_S and r in _run_driver:
                    idle.setdefault(_run_driver[r], []).append(r)
        for driver, runs in idle.items():
            try:
                live = await aio.rpc_call(driver, "hornbeam_dag._scheduler", "alive", [runs], timeout_ms=10000)
            except (NodeDown, RPCTimeout):
                for r in runs:
                    unanswered[r] = unanswered.get(r, 0) + 1
                    if unanswered[r] >= 2:
                        unanswered.pop(r)
                        release(r)
                continue
            except Exception:
                continue  # ask again next time
            for r, ok in zip(runs, live):
                unanswered.pop(r, None)
                if ok:
                    with _lock:
                        if r in _last:
                            _last[r] = time.monotonic()
                else:
                    release(r)


def _function(module: str, name: str) -> Callable[..., Any]:
    f = _fns.get((module, name))
    if f is None:
        # Other nodes ask this one to run the function: --allow-module holds
        # as for an rpc_call of it.
        _hornbeam.call("module_allowed", module)
        f = _fns[(module, name)] = resolve(module, name)
    return f


class _Lost(Exception):
    def __init__(self, idx: int, node: str, down: bool) -> None:
        self.idx, self.node, self.down = idx, node, down


def _refs(spec: list, out: List[Tuple[int, str]]) -> None:
    for a in spec:
        if a[0] == "r":
            out.append((a[1], a[2]))
        else:
            _refs(a[3], out)


def _fetch_inputs(run_id: str, store: Dict[int, Any], specs: List[list], have: Dict[int, Any]) -> None:
    """Put every result ``specs`` name into ``have``: from this node's store, or
    with one call per holding node for those held elsewhere."""
    refs: List[Tuple[int, str]] = []
    for spec in specs:
        _refs(spec, refs)
    remote: Dict[str, List[int]] = {}
    for idx, holder in refs:
        if idx in have:
            continue
        if holder == _me:
            try:
                have[idx] = store[idx]
            except KeyError:
                raise _Lost(idx, holder, False) from None
        else:
            want = remote.setdefault(holder, [])
            if idx not in want:
                want.append(idx)
    for holder, idxs in remote.items():
        try:
            reply = hornbeam_erlang.rpc_call(holder, "hornbeam_dag._executor", "fetch", [run_id, idxs], None)
        except (NodeDown, RPCTimeout):
            raise _Lost(idxs[0], holder, True) from None
        if reply[0] != "ok":
            raise _Lost(reply[1], holder, False)
        for idx, v in zip(idxs, reply[1]):
            have[idx] = v


def _args(spec: list, have: Dict[int, Any]) -> List[Any]:
    out = []
    for a in spec:
        if a[0] == "r":
            out.append(have[a[1]])
        else:
            _, module, name, sub, extra = a
            out.append(_function(module, name)(*_args(sub, have), *extra))
    return out


def run(run_id: str, driver: str, tasks: list, chain: bool) -> list:
    """Run ``tasks`` one after another: each ``[index, module, function, args,
    extra_args, want, keep]``, its args ``["r", index, holder]`` (a result) or
    ``["i", module, function, args, extra_args]`` (an inline function). A result
    is kept here if ``keep``. Replies one record per task run: ``["ok", result
    if want else None, seconds it ran]``; the last may be ``["lost", index, node, down]`` (an
    input could not be had from its holder), ``["err", type, message,
    traceback]`` (the function raised) or ``["ended"]`` (the run is over here),
    and the tasks after it are not run. With ``chain``, each task takes the
    previous one's result, and is its only user."""
    global _count, _peak
    store = _open(run_id, driver)
    if store is None:
        return [["ended"]]
    out: list = []
    prev = None
    # Inputs held elsewhere come in one call per holder for the whole batch
    # (a chain's later links read the store as they go).
    have: Dict[int, Any] = {}
    for pos, (idx, module, name, spec, extra, want, keep) in enumerate(tasks):
        try:
            if pos == 0:
                _fetch_inputs(run_id, store, [tasks[0][3]] if chain else [t[3] for t in tasks], have)
            elif chain:
                have = {}  # the previous link's result is in the store; nothing else is needed
                _fetch_inputs(run_id, store, [spec], have)
        except _Lost as e:
            out.append(["lost", e.idx, e.node, e.down])
            return out
        except Exception as e:  # an input that cannot travel, say
            out.append(["err", _qualname(type(e)), f"fetching the inputs: {e}", traceback.format_exc()])
            return out
        try:
            t0 = time.perf_counter()
            value = _function(module, name)(*_args(spec, have), *extra)
            took = time.perf_counter() - t0
        except Exception as e:
            out.append(["err", _qualname(type(e)), str(e), traceback.format_exc()])
            return out
        if keep:
            with _lock:
                if _runs.get(run_id) is not store:
                    out.append(["ended"])
                    return out
                if _count >= MAX_RESULTS:
                    out.append(["err", "MemoryError", f"hornbeam_dag: {MAX_RESULTS} results already held on {_me}", ""])
                    return out
                if idx not in store:
                    _count += 1
                    if _count > _peak:
                        _peak = _count
                store[idx] = value
        if prev is not None:
            # The previous task's result had this task as its only user (the
            # driver chains only such tasks): it goes now.
            with _lock:
                if _runs.get(run_id) is store and store.pop(prev, _MISSING) is not _MISSING:
                    _count -= 1
        out.append(["ok", value if want else None, took])
        prev = idx if keep and chain else None
    return out


def _qualname(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


async def fetch(run_id: str, idxs: List[int]) -> list:
    """``["ok", [results]]`` of a run, or ``["missing", index]``.

    A coroutine, so it is served on the node's event loop: a node whose pool
    threads all wait for inputs still answers the nodes that wait for its own.
    """
    store = _runs.get(run_id)
    if store is not None:
        _last[run_id] = time.monotonic()
    if store is None:
        return ["missing", idxs[0]]
    out = []
    for i in idxs:
        try:
            out.append(store[i])
        except KeyError:
            return ["missing", i]
    return ["ok", out]


def drop(run_id: str, idxs: List[int]) -> None:
    """Forget results of a run that no function needs any more."""
    global _count
    with _lock:
        store = _runs.get(run_id)
        if store is None:
            return
        for i in idxs:
            if store.pop(i, _MISSING) is not _MISSING:
                _count -= 1


_MISSING = object()


def release(run_id: str) -> None:
    """End a run here: its results go, and late calls for it are refused."""
    global _count
    with _lock:
        store = _runs.pop(run_id, None)
        if store is not None:
            _count -= len(store)
        _last.pop(run_id, None)
        driver = _run_driver.pop(run_id, None)
        if driver is not None and driver in _drivers:
            _drivers[driver].discard(run_id)
            if not _drivers[driver]:
                del _drivers[driver]
        if run_id not in _released_set:
            if len(_released) == _released.maxlen:
                _released_set.discard(_released[0])
            _released.append(run_id)
            _released_set.add(run_id)


def stats() -> Dict[str, int]:
    """Results held here now, the most held at once since the last reset, open
    runs, and runs whose driver is remembered (to end them if it goes down)."""
    with _lock:
        return {"results": _count, "peak": _peak, "runs": len(_runs), "tracked": len(_run_driver)}


def reset_peak() -> None:
    """Start measuring the peak afresh (tests)."""
    global _peak
    with _lock:
        _peak = _count
