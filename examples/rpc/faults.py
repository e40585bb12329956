"""Fault injection for the examples: make a served function slow or failing on
one node, and count how often it was called there.

Every function the example nodes serve starts with ``faults.apply(NAME)``, so a
demo or a test can show what the RPC patterns do when a node misbehaves::

    rpc_call('worker1@127.0.0.1', 'faults', 'inject', ['inference.run', {'sleep': 2.0}])
    rpc_call('worker1@127.0.0.1', 'faults', 'inject', ['health.check', {'raise': 'disk full'}])
    rpc_call('worker1@127.0.0.1', 'faults', 'inject', ['inference.run', None])   # heal
    rpc_call('worker1@127.0.0.1', 'faults', 'calls', ['inference.run'])          # -> int

Faults and counters live in the node's state (``hornbeam_erlang.state_*``), so
they are shared by every thread of the node and survive between calls.
"""

import time

from hornbeam_erlang import state_delete, state_get, state_incr, state_keys, state_set

_FAULT = "faults:fault:"
_CALLS = "faults:calls:"


def inject(target, fault):
    """Set the fault for ``target`` ('module.function') on this node.

    ``fault`` is ``{'sleep': seconds}``, ``{'raise': message}``, both (sleep,
    then raise), or None to clear it.
    """
    if fault is None:
        state_delete(_FAULT + target)
    else:
        state_set(_FAULT + target, dict(fault))
    return True


def apply(target):
    """Count a call of ``target`` and act out its injected fault, if any."""
    state_incr(_CALLS + target)
    fault = state_get(_FAULT + target)
    if not fault:
        return
    if fault.get("sleep"):
        time.sleep(fault["sleep"])
    if fault.get("raise"):
        raise RuntimeError(fault["raise"])


def calls(target):
    """How many times ``target`` was called on this node."""
    return state_get(_CALLS + target) or 0


def reset():
    """Clear every fault and counter on this node."""
    for key in state_keys("faults:"):
        state_delete(key)
    return True
