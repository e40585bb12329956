"""monitor_node: callbacks for nodeup/nodedown events."""

import threading
import traceback
from typing import Any, Callable, Dict, List, Tuple

import _hornbeam

from ._rpc import nodes

Callback = Callable[[str, str], Any]

_lock = threading.Lock()
# node -> [(callback, seq)]: seq is the latest membership event when the
# callback was added; it hears only later ones (the state up to it is what
# nodes() showed then).
_callbacks: Dict[str, List[Tuple[Callback, int]]] = {}


def monitor_node(node: str, callback: Callback) -> None:
    """Call ``callback(event, node)`` with ``'nodedown'`` and ``'nodeup'`` for ``node``.

    As in Erlang, a node that is not connected now is reported down at once.
    Callbacks run on the node's thread pool; their exceptions are printed.
    """
    if not isinstance(node, str) or not callable(callback):
        raise TypeError("monitor_node(node: str, callback: callable)")
    seq = _hornbeam.call("event_seq")
    with _lock:
        _callbacks.setdefault(node, []).append((callback, seq))
    if node not in nodes("connected"):
        _call(callback, "nodedown", node)


def demonitor_node(node: str, callback: Callback = None) -> None:
    """Stop calling ``callback`` (or every callback, when None) for ``node``."""
    with _lock:
        if callback is None:
            _callbacks.pop(node, None)
        elif node in _callbacks:
            _callbacks[node] = [(cb, s) for cb, s in _callbacks[node] if cb != callback]


def _call(cb: Callback, event: str, node: str) -> None:
    try:
        cb(event, node)
    except Exception:
        traceback.print_exc()


def _dispatch(event: str, node: str, seq: int = 0) -> None:
    """Called by the host for every membership event, in order."""
    with _lock:
        cbs = [cb for cb, since in _callbacks.get(node, ()) if seq > since]
    for cb in cbs:
        _call(cb, event, node)
