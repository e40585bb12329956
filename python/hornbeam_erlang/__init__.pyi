"""Types of hornbeam_erlang (its functions are implemented in the host)."""

from typing import Any, Iterable, Optional

from . import aio as aio
from ._monitor import demonitor_node as demonitor_node, monitor_node as monitor_node
from ._rpc import (
    multicall as multicall,
    node_info as node_info,
    nodes as nodes,
    ping as ping,
    rpc_call as rpc_call,
    rpc_cast as rpc_cast,
)
from .errors import (
    BadRPC as BadRPC,
    Busy as Busy,
    NodeDown as NodeDown,
    PayloadTooLarge as PayloadTooLarge,
    RemoteError as RemoteError,
    RPCError as RPCError,
    RPCTimeout as RPCTimeout,
)

def node() -> str:
    """This node's name, e.g. 'web@10.0.0.1'; 'nonode@nohost' when unnamed."""

def state_get(key: str) -> Any:
    """The value stored under key, or None when missing or expired."""

def state_set(key: str, value: Any, ttl: Optional[float] = None) -> None:
    """Store value under key, expiring after ttl seconds when given.

    Raises TypeError for a value the bridge cannot convert, MemoryError when the
    node's state limits (entries or bytes) would be exceeded.
    """

def state_delete(key: str) -> None:
    """Remove key; a missing key is not an error."""

def state_incr(key: str, delta: int = 1) -> int:
    """Atomically add delta to the integer under key and return the new value.

    A missing key counts from 0. Raises TypeError when the stored value is not an
    integer and OverflowError when the result leaves the 64-bit range.
    """

def state_decr(key: str, delta: int = 1) -> int:
    """Atomically subtract delta; state_incr(key, -delta)."""

def state_get_multi(keys: Iterable[str]) -> dict[str, Any]:
    """A dict of every key to its value, None for missing keys."""

def state_keys(prefix: Optional[str] = None) -> list[str]:
    """Sorted keys, all or those starting with prefix."""
