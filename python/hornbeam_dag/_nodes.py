"""Capabilities: what each node declares it can run at once."""

import math
from typing import Dict, Mapping, Tuple

import _hornbeam


def local_capabilities() -> Dict[str, float]:
    """This node's capabilities."""
    return _hornbeam.call("dag_capabilities")[0]


def local_node() -> Tuple[Dict[str, float], bool]:
    """This node's capabilities and whether it is hidden (a hidden node takes no DAG work)."""
    caps, hidden = _hornbeam.call("dag_capabilities")
    return caps, hidden


def register_local_node(caps: Mapping[str, float]) -> Dict[str, float]:
    """Declare this node's capabilities, e.g. ``{"cpu": 8, "memory": 16000, "gpu": 1}``.

    The keys given override what the node detected (``cpu``, ``memory`` in MB,
    ``gpu``) or was started with (``--capability``); the others stay. Every node
    sees the change with this node's next heartbeat, which is sent at once.
    Returns the capabilities now declared. In a worker process (``start -w N``)
    this raises RuntimeError: start the node with ``--capability`` instead.
    """
    if not isinstance(caps, Mapping):
        raise TypeError("register_local_node takes a dict of capabilities")
    clean: Dict[str, float] = {}
    for k, v in caps.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"capability names must be str, not {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise ValueError(f"capability {k}={v!r} must be a number >= 0")
        clean[k] = float(v)
    return _hornbeam.call("dag_set_capabilities", clean)


def discover_nodes() -> Dict[str, Dict[str, float]]:
    """``{node: capabilities}`` for this node and every visible node.

    Capabilities ride on the membership heartbeats, so this makes no remote call.
    """
    out = {m["name"]: dict(m.get("capabilities") or {}) for m in _hornbeam.call("members")}
    out[_hornbeam.node()] = local_capabilities()
    return out
