"""The audit log the logger node serves: ``audit_log.record(event, data)``.

Callers send records with ``rpc_cast`` (fire and forget). Each record is kept in
the logger node's state under ``audit:NNNNNN``; ``entries()`` reads them back.
"""

import time

from hornbeam_erlang import node, state_delete, state_get_multi, state_incr, state_keys, state_set

import faults


def record(event, data):
    faults.apply("audit_log.record")
    seq = state_incr("audit:seq")
    state_set(f"audit:{seq:06d}", {"seq": seq, "event": event, "data": data,
                                  "at": time.time(), "logged_by": node()})
    print(f"[audit] {event} {data}", flush=True)


def entries():
    """Every record, oldest first."""
    keys = [k for k in state_keys("audit:") if k != "audit:seq"]
    values = state_get_multi(keys)
    return [values[k] for k in keys if values[k] is not None]


def clear():
    for key in state_keys("audit:"):
        state_delete(key)
    return True
