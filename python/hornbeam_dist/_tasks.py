"""Remote tasks: async_call returns at once with a Task (a concurrent future)."""

import asyncio
import concurrent.futures
import functools
import itertools
from typing import Any, Optional, Sequence

import _hornbeam

from hornbeam_erlang import _process
from hornbeam_erlang._rpc import _check, _timeout

_ids = itertools.count(1)


class Task(concurrent.futures.Future):
    """A call running on another node (or this one), as Elixir's Task.

    A ``concurrent.futures.Future``: ``result(timeout)``, ``exception()``,
    ``add_done_callback``, ``concurrent.futures.as_completed`` and ``wait`` work,
    and ``await task`` works in asyncio. ``cancel()`` cancels the remote work
    (a coroutine's task is cancelled; a synchronous function gets
    KeyboardInterrupt at its next bytecode). If the node goes down, the task
    fails with NodeDown as soon as that is known.

    Attribute: ``node``.
    """

    def __init__(self, node: str, call_id: int) -> None:
        super().__init__()
        self.node = node
        self._id = call_id

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        try:
            _hornbeam.call_fast("dist_cancel", self._id, self.node)
        except Exception:
            pass
        return True

    def __await__(self):
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        return f"<Task {self._id} on {self.node} {self._state.lower()}>"


def _settle(task: Task, fut: "asyncio.Future") -> None:
    if fut.cancelled():
        task.cancel()
        return
    exc = fut.exception()  # retrieved even when the task was cancelled first
    try:
        if exc is not None:
            task.set_exception(exc)
        else:
            task.set_result(fut.result())
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile


def async_call(node: str, module: str, function: str, args: Sequence[Any] = (),
               timeout_ms: Optional[float] = None) -> Task:
    """Start ``module.function(*args)`` on ``node`` and return a Task at once.

    ``timeout_ms`` bounds the call (RPCTimeout); None waits as long as the
    node is up. The Task fails with the same exceptions as rpc_call.
    """
    a = _check(node, module, function, args)
    t = _timeout(timeout_ms)
    loop = _process._node_loop
    task = Task(node, next(_ids))
    fut = loop.create_future()
    fut.add_done_callback(functools.partial(_settle, task))
    _hornbeam.call_async(fut, "dist_call", task._id, node, module, function, a, t)
    return task


__all__ = ["Task", "async_call"]
