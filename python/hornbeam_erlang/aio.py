"""asyncio forms of the remote calls: they do not block the event loop.

    from hornbeam_erlang import aio
    result = await aio.rpc_call('worker@10.0.0.2', 'ml', 'encode', [texts])
"""

import asyncio
from typing import Any, List, Optional, Sequence, Tuple

import _hornbeam

from . import _process, _rpc


async def _go(name: str, *args: Any) -> Any:
    fut = asyncio.get_running_loop().create_future()
    _hornbeam.call_async(fut, name, *args)
    return await fut


async def rpc_call(node: str, module: str, function: str, args: Sequence[Any] = (),
                   timeout_ms: Optional[float] = 5000) -> Any:
    """``await``-able rpc_call; same arguments, result and exceptions."""
    return await _go("rpc_call", node, module, function, _rpc._check(node, module, function, args),
                     _rpc._timeout(timeout_ms))


async def multicall(nodes: Sequence[str], module: str, function: str, args: Sequence[Any] = (),
                    timeout_ms: Optional[float] = 5000) -> Tuple[List[Any], List[str]]:
    """``await``-able multicall; returns ``(results, bad_nodes)``."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _rpc.multicall, nodes, module, function, args, timeout_ms)


async def ping(node: str) -> str:
    """``await``-able ping: ``'pong'`` or ``'pang'``."""
    return await _go("ping", node)


async def node_info(node: str) -> dict:
    """``await``-able node_info."""
    return await _go("node_info", node)


async def receive(timeout_ms: Optional[float] = None, match=None) -> Any:
    """``await``-able receive: the calling task's next (or first matching)
    message; the event loop runs on while it waits. Same arguments and
    exceptions as hornbeam_erlang.receive."""
    return await _process.areceive(timeout_ms, match)


__all__ = ["rpc_call", "multicall", "ping", "node_info", "receive"]
