"""Functions the metrics tests call: a call from the node, whatever its outcome."""
from hornbeam_erlang import RPCError, rpc_call


def call(target, module, function, args, timeout_ms):
    """Calls target from this node and names the outcome instead of raising."""
    try:
        rpc_call(target, module, function, args, timeout_ms)
        return "ok"
    except RPCError as e:
        return type(e).__name__
