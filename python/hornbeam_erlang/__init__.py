"""The node's Erlang-style API: node-wide state and the node's identity.

State is shared by every thread (and every worker process) of a node, like ETS
in the Erlang original. Keys are str; values are any value the bridge converts:
None, bool, int (any size), float, str, bytes, list, tuple, dict and numpy
arrays. Other types raise TypeError naming the type.

These names are the C functions of the host, bound directly so that a call
costs one C call and no Python frame; hornbeam_erlang/__init__.pyi types them.
"""

from _hornbeam import (
    node,
    state_decr,
    state_delete,
    state_get,
    state_get_multi,
    state_incr,
    state_keys,
    state_set,
)

__all__ = [
    "node",
    "state_decr",
    "state_delete",
    "state_get",
    "state_get_multi",
    "state_incr",
    "state_keys",
    "state_set",
]
