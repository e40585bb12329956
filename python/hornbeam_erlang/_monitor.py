"""monitor_node: callbacks for nodeup/nodedown events."""

import threading
import traceback
from typing import Any, Callable, Dict, List

from ._rpc import nodes

Callback = Callable[[str, str], Any]

_lock = threading.Lock()
_callbacks: Dict[str, List[Callback]] = {}


def monitor_node(node: str, callback: Callback) -> None:
    """Call ``callback(event, node)`` with ``'nodedown'`` and ``'nodeup'`` for ``node``.

    As in Erlang, a node that is not connected now is reported down at once.
    Callbacks run on the node's thread pool; their exceptions are printed.
    """
    if not isinstance(node, str) or not callable(callback):
        raise TypeError("monitor_node(node: str, callback: callable)")
    with _lock:
        _callbacks.setdefault(node, []).append(callback)
    if node not in nodes("connected"):
        _call(callback, "nodedown", node)


def demonitor_node(node: str, callback: Callback = None) -> None:
    """Stop calling ``callback`` (or every callback, when None) for ``node``."""
    with _lock:
        if callback is None:
            _callbacks.pop(node, None)
        elif callback in _callbacks.get(node, []):
            _callbacks[node].remove(callback)


def _call(cb: Callback, event: str, node: str) -> None:
    try:
        cb(event, node)
    except Exception:
        traceback.print_exc()


def _dispatch(event: str, node: str) -> None:
    """Called by the host for every membership event."""
    with _lock:
        cbs = list(_callbacks.get(node, ()))
    for cb in cbs:
        _call(cb, event, node)
