"""Remote calls and membership, implemented by the host in Go."""

from typing import Any, List, Optional, Sequence, Tuple

import _hornbeam

from .errors import RPCError

_call = _hornbeam.call


def _check(node: str, module: str, function: str, args: Sequence[Any]) -> list:
    if not isinstance(node, str):
        raise TypeError(f"node must be a str, not {type(node).__name__}")
    if not isinstance(module, str) or not isinstance(function, str):
        raise TypeError("module and function must be str")
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"args must be a list or tuple, not {type(args).__name__}")
    return list(args)


def _timeout(timeout_ms: Optional[float]) -> Optional[float]:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
        raise TypeError(f"timeout_ms must be a number or None, not {type(timeout_ms).__name__}")
    if timeout_ms <= 0:
        raise ValueError("timeout_ms must be positive")
    return float(timeout_ms)


def rpc_call(node: str, module: str, function: str, args: Sequence[Any] = (),
             timeout_ms: Optional[float] = 5000) -> Any:
    """Call ``module.function(*args)`` on ``node`` and return its result.

    The module is imported from the target node's python path; coroutine
    functions are awaited on its event loop. ``timeout_ms=None`` waits forever.
    Raises RPCTimeout, NodeDown, BadRPC, RemoteError or PayloadTooLarge.
    """
    return _call("rpc_call", node, module, function, _check(node, module, function, args),
                 _timeout(timeout_ms))


def rpc_cast(node: str, module: str, function: str, args: Sequence[Any] = ()) -> None:
    """Send ``module.function(*args)`` to ``node`` and return at once.

    Returns once the target has queued the call: the result and any exception
    are dropped there (the target logs a failure with this node's name and
    counts it). A target at its bounds slows the caller for up to a second,
    then Busy is raised: the cast did not run. NodeDown is raised for a node
    known to be down, PayloadTooLarge for an oversized request.
    """
    _call("rpc_cast", node, module, function, _check(node, module, function, args), None)


def multicall(nodes: Sequence[str], module: str, function: str, args: Sequence[Any] = (),
              timeout_ms: Optional[float] = 5000) -> Tuple[List[Any], List[str]]:
    """Call ``module.function(*args)`` on every node in parallel, like rpc:multicall.

    Returns ``(results, bad_nodes)``: one result per node that answered, in the
    order of ``nodes`` (the exception instance when the call raised there), and
    the nodes that were down, unreachable or timed out.
    """
    if isinstance(nodes, str) or not isinstance(nodes, (list, tuple)):
        raise TypeError("nodes must be a list of node names")
    for n in nodes:
        _check(n, module, function, args)
    answers, bad = _call("multicall", list(nodes), module, function, list(args), _timeout(timeout_ms))
    results = []
    for _node, ok, value in answers:
        if ok:
            results.append(value)
        else:
            spec, msg, attrs = value
            results.append(_exception(spec, msg, attrs))
    return results, list(bad)


def _exception(spec: str, msg: str, attrs: Optional[dict]) -> BaseException:
    from . import errors

    cls = getattr(errors, spec.split(":", 1)[-1], RPCError)
    exc = cls(msg)
    for k, v in (attrs or {}).items():
        setattr(exc, k, v)
    return exc


def nodes(kind: Optional[str] = None) -> List[str]:
    """Names of the nodes this node sees, sorted, never itself.

    ``nodes()`` lists visible nodes; ``'hidden'`` hidden ones (CLI tools, --hidden);
    ``'connected'`` both; ``'this'`` only this node; ``'known'`` this node and all others.
    """
    return _call("nodes", kind)


def ping(node: str) -> str:
    """``'pong'`` if ``node`` answers within 2 s, else ``'pang'`` (like net_adm:ping)."""
    return _call("ping", node)


def node_info(node: str) -> dict:
    """Resources and identity of ``node``: cpu_count, memory_total, memory_available,
    load1/5/15, gpus, gpu_count, roles, hidden, python version, uptime_s, ...

    Answered by the node's Go side, so it works while its Python is busy.
    """
    return _call("node_info", node)


__all__ = ["rpc_call", "rpc_cast", "multicall", "nodes", "ping", "node_info"]

