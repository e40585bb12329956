"""The node's Erlang-style API: remote calls, membership and node-wide state.

Processes (``spawn``, ``send``, ``receive``, ``monitor``, ``link``, process
groups) follow Erlang's; see ``hornbeam_erlang._process``.

Remote calls (``rpc_call``, ``rpc_cast``, ``multicall``) run Python functions on
other nodes of the cluster; ``nodes()``, ``ping`` and ``monitor_node`` follow
Erlang's distribution. Errors subclass ``RPCError`` (a ``RuntimeError``).

State is shared by every thread (and every worker process) of a node, like ETS
in the Erlang original. Keys are str; values are any value the bridge converts:
None, bool, int (any size), float, str, bytes, list, tuple, dict and numpy
arrays. Other types raise TypeError naming the type. The state functions are
the host's C functions bound directly (one C call, no Python frame);
``__init__.pyi`` types them. ``hornbeam_erlang.aio`` has awaitable forms.
"""

from _hornbeam import (
    state_decr,
    state_delete,
    state_get,
    state_get_multi,
    state_incr,
    state_keys,
    state_set,
)

from ._process import (
    Pid,
    demonitor,
    exit,
    is_alive,
    join,
    leave,
    link,
    members,
    monitor,
    node,
    publish,
    receive,
    register,
    registered,
    self,
    send,
    spawn,
    spawn_link,
    trap_exit,
    unlink,
    unregister,
    whereis,
)
from . import aio
from ._monitor import demonitor_node, monitor_node
from ._rpc import multicall, node_info, nodes, ping, rpc_call, rpc_cast
from .errors import (
    BadRPC,
    Busy,
    NodeDown,
    NoProcess,
    PayloadTooLarge,
    ProcessExit,
    ProcessLimit,
    ReceiveTimeout,
    RemoteError,
    RPCError,
    RPCTimeout,
)

__all__ = [
    "node",
    "nodes",
    "ping",
    "node_info",
    "monitor_node",
    "demonitor_node",
    "rpc_call",
    "rpc_cast",
    "multicall",
    "aio",
    "RPCError",
    "RPCTimeout",
    "NodeDown",
    "BadRPC",
    "RemoteError",
    "PayloadTooLarge",
    "Busy",
    "state_decr",
    "state_delete",
    "state_get",
    "state_get_multi",
    "state_incr",
    "state_keys",
    "state_set",
    # processes
    "Pid",
    "self",
    "spawn",
    "spawn_link",
    "send",
    "receive",
    "register",
    "unregister",
    "whereis",
    "registered",
    "monitor",
    "demonitor",
    "link",
    "unlink",
    "trap_exit",
    "exit",
    "is_alive",
    "join",
    "leave",
    "members",
    "publish",
    "ReceiveTimeout",
    "ProcessExit",
    "Busy",
    "ProcessLimit",
    "NoProcess",
]
