"""Erlang-style processes: pids, spawn, send, receive, names, monitors, links
and process groups.

A process is a thread (synchronous functions) or an asyncio task on the node's
event loop (coroutine functions) with a mailbox kept by the host in Go:
bounded, ordered per sender, waited on with the GIL released. Any thread or
task that calls ``self()`` becomes a process too.
"""

import asyncio
import contextvars
import functools
import importlib
import inspect
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import _hornbeam

from ._rpc import _check as _check_call
from .errors import BadRPC, ProcessExit, ReceiveTimeout

_call = _hornbeam.call  # may wait: the GIL is released
_fast = _hornbeam.call_fast  # never waits: the GIL is kept
_node = _hornbeam.node

TAG_PID = 0x48420002  # CBOR tag of a Pid: [node, id]

# Kinds, as the host's process.Kind.
_TASK, _THREAD, _ADOPTED = 0, 1, 2


class Pid:
    """A process id: the node the process runs on and its number there.

    Immutable and hashable; travels inside messages and call arguments, and
    prints as Erlang does: ``<web@10.0.0.1.42.0>``.
    """

    __slots__ = ("node", "id")
    node: str
    id: int

    def __init__(self, node: str, id: int) -> None:
        if not isinstance(node, str) or not node:
            raise TypeError("Pid node must be a non-empty str")
        if isinstance(id, bool) or not isinstance(id, int) or id < 0:
            raise TypeError("Pid id must be a non-negative int")
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "id", id)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Pid is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is Pid and other.id == self.id and other.node == self.node

    def __hash__(self) -> int:
        return hash((self.node, self.id))

    def __repr__(self) -> str:
        return f"<{self.node}.{self.id}.0>"

    __str__ = __repr__

    def __reduce__(self):
        return (Pid, (self.node, self.id))

    def __cbor__(self) -> list:
        return [self.node, self.id]

    @classmethod
    def _from_cbor(cls, content: Any) -> "Pid":
        # Input may be hostile: anything malformed is the codec's ValueError.
        if (not isinstance(content, (list, tuple)) or len(content) != 2 or not isinstance(content[0], str)
                or not content[0] or isinstance(content[1], bool) or not isinstance(content[1], int)
                or content[1] < 0):
            raise ValueError("hornbeam: a pid must be [node, id]")
        return cls(content[0], content[1])


_hornbeam.register_tag(Pid, TAG_PID, Pid._from_cbor)

# ---- identity -----------------------------------------------------------------

_local = threading.local()
# A task's process: inherited by the tasks it creates (asyncio.wait_for,
# gather), which act for the same process, as helpers of one Erlang process.
_ctx_pid: "contextvars.ContextVar[Optional[Pid]]" = contextvars.ContextVar("hornbeam_pid", default=None)
_tasks: Dict[int, asyncio.Task] = {}  # process id -> its task (spawned or adopted)
_killed: Dict[int, str] = {}  # process id -> the reason it was cancelled for
_node_loop: Optional[asyncio.AbstractEventLoop] = None


class _Owner:
    """Held in a thread's locals: when an adopted thread ends, so does its process."""

    __slots__ = ("pid", "adopted")

    def __init__(self, pid: Pid, adopted: bool) -> None:
        self.pid = pid
        self.adopted = adopted

    def __del__(self) -> None:
        if self.adopted:
            try:
                _fast("proc_exit", self.pid.id, "normal")
            except BaseException:
                pass


def _adopted_done(pid: Pid, task: asyncio.Task) -> None:
    if _tasks.get(pid.id) is task:
        del _tasks[pid.id]
    _fast("proc_exit", pid.id, "normal")


def self() -> Pid:
    """The calling process's pid. A thread or task that is not a spawned
    process gets a pid and a mailbox on its first call, as Erlang's shell is a
    process; it keeps them until it ends. Tasks a process creates act for it."""
    pid = _ctx_pid.get()
    if pid is not None:
        return pid
    loop = asyncio._get_running_loop()
    if loop is not None:
        task = asyncio.current_task(loop)
        if task is not None:
            pid = _fast("proc_new", _ADOPTED, None)
            _ctx_pid.set(pid)
            _tasks[pid.id] = task
            task.add_done_callback(functools.partial(_adopted_done, pid))
            return pid
    o = getattr(_local, "owner", None)
    if o is None:
        o = _Owner(_fast("proc_new", _ADOPTED, None), True)
        _local.owner = o
    return o.pid


def _forget_self(pid: Pid) -> None:
    """After ProcessExit: the caller's process is over; an adopted thread or
    task gets a new one if it calls self() again."""
    if _ctx_pid.get() == pid:
        _ctx_pid.set(None)
        _fast("proc_exit", pid.id, "killed")
        return
    o = getattr(_local, "owner", None)
    if o is not None and o.pid == pid and o.adopted:
        o.adopted = False
        _local.owner = None
        _fast("proc_exit", pid.id, "killed")


def node(item: Optional[Pid] = None) -> str:
    """This node's name, or with a Pid, the node it runs on."""
    if item is None:
        return _node()
    if type(item) is Pid:
        return item.node
    raise TypeError(f"node() takes a Pid, not {type(item).__name__}")


# ---- spawn ------------------------------------------------------------------


def _reason(e: BaseException) -> str:
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _resolve(module: str, function: str) -> Callable:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            raise BadRPC(f"no module named {module!r}") from None
        raise
    fn = getattr(mod, function, None)
    if fn is None or not callable(fn):
        raise BadRPC(f"module {module!r} has no function {function!r}")
    return fn


def _spawn_here(module: str, function: str, args: list, link: Optional[Pid]) -> Pid:
    fn = _resolve(module, function)
    is_task = inspect.iscoroutinefunction(fn)
    pid = _fast("proc_new", _TASK if is_task else _THREAD, link)
    try:
        if is_task:
            loop = asyncio._get_running_loop()
            if loop is _node_loop:
                _create_task(pid, fn, args)
            else:
                _schedule(pid, fn, args)
        else:
            threading.Thread(target=_thread_body, args=(pid, fn, args), name=f"process {pid}",
                             daemon=True).start()
    except BaseException:
        _fast("proc_discard", pid.id)
        raise
    return pid


def _spawn_remote(module: str, function: str, args: list, link: Optional[Pid]) -> Pid:
    """Called by the host for another node's spawn."""
    return _spawn_here(module, function, list(args), link)


_pending: List[Tuple[Pid, Callable, list]] = []
_pending_lock = threading.Lock()


def _schedule(pid: Pid, fn: Callable, args: list) -> None:
    """Tasks spawned from other threads reach the loop in batches: one wake-up
    for a burst, not one per spawn."""
    with _pending_lock:
        _pending.append((pid, fn, args))
        first = len(_pending) == 1
    if first:
        _node_loop.call_soon_threadsafe(_create_pending)


def _create_pending() -> None:
    with _pending_lock:
        batch = _pending[:]
        _pending.clear()
    for pid, fn, args in batch:
        _create_task(pid, fn, args)


def _create_task(pid: Pid, fn: Callable, args: list) -> None:
    ctx = contextvars.copy_context()
    ctx.run(_ctx_pid.set, pid)
    _tasks[pid.id] = _node_loop.create_task(_task_body(pid, fn, args), name=f"process {pid}", context=ctx)


def _crash(pid: Pid, e: BaseException) -> None:
    print(f"process {pid} exited: {_reason(e)}", file=sys.stderr)
    traceback.print_exception(e)


async def _task_body(pid: Pid, fn: Callable, args: list) -> None:
    reason = "normal"
    try:
        await fn(*args)
    except asyncio.CancelledError:
        reason = _killed.get(pid.id, "shutdown")
    except ProcessExit as e:
        reason = e.reason
    except BaseException as e:
        reason = _reason(e)
        _crash(pid, e)
    finally:
        _tasks.pop(pid.id, None)
        _killed.pop(pid.id, None)
        _fast("proc_exit", pid.id, reason)


def _thread_body(pid: Pid, fn: Callable, args: list) -> None:
    _local.owner = _Owner(pid, False)
    reason = "normal"
    try:
        fn(*args)
    except ProcessExit as e:
        reason = e.reason
    except BaseException as e:
        reason = _reason(e)
        _crash(pid, e)
    finally:
        _local.owner = None
        _fast("proc_exit", pid.id, reason)


def _cancel(id: int, reason: str) -> None:
    """Called by the host when an exit signal ends a task's process."""
    task = _tasks.get(id)
    if task is not None and _node_loop is not None:
        _killed[id] = reason
        _node_loop.call_soon_threadsafe(task.cancel, f"process exit: {reason}")


async def _bind_loop() -> None:
    """Called by the host at start, on its event loop."""
    global _node_loop
    _node_loop = asyncio.get_running_loop()


def spawn(node: str, module: str, function: str, args: Sequence[Any] = ()) -> Pid:
    """Run ``module.function(*args)`` as a new process on ``node`` (this node
    too) and return its pid at once.

    A coroutine function runs as a task on the node's event loop, a synchronous
    one on a thread of its own (at most ``--max-processes`` at once:
    ProcessLimit beyond). The process ends when the function returns (reason
    ``'normal'``) or raises (reason ``'Type: message'``). Raises BadRPC when
    the module or function does not exist there, NodeDown for a node that is
    down.
    """
    a = _check_call(node, module, function, args)
    if node == _node():
        return _spawn_here(module, function, a, None)
    return _call("proc_spawn", node, module, function, a, None)


def spawn_link(node: str, module: str, function: str, args: Sequence[Any] = ()) -> Pid:
    """spawn(), with the new process linked to the caller before it runs."""
    a = _check_call(node, module, function, args)
    me = self()
    if node == _node():
        return _spawn_here(module, function, a, me)
    return _call("proc_spawn", node, module, function, a, me)


# ---- messages ---------------------------------------------------------------

Dest = Union[Pid, str, Tuple[str, str]]


def send(dest: Dest, msg: Any) -> None:
    """Send ``msg`` to ``dest``: a Pid, a name registered on this node, or
    ``(name, node)``. Never waits on the network; messages from one process to
    another arrive in the order sent. A message to a process that is gone is
    dropped, as in Erlang. Raises Busy when a local receiver's mailbox is full,
    NoProcess for an unregistered local name.
    """
    if type(dest) is Pid:
        _fast("proc_send", dest, msg, "")
    elif isinstance(dest, str):
        _fast("proc_send_name", dest, None, msg)
    elif isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str) and isinstance(dest[1], str):
        _fast("proc_send_name", dest[0], dest[1], msg)
    else:
        raise TypeError(f"send(): dest must be a Pid, a name or (name, node), not {dest!r}")


def _timeout(timeout_ms: Optional[float]) -> Optional[float]:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
        raise TypeError(f"timeout_ms must be a number or None, not {type(timeout_ms).__name__}")
    if timeout_ms < 0:
        raise ValueError("timeout_ms must not be negative")
    return float(timeout_ms)


def receive(timeout_ms: Optional[float] = None, match: Optional[Callable[[Any], bool]] = None) -> Any:
    """The next message of the calling process's mailbox, waiting for one.

    With ``match``, the first message for which ``match(msg)`` is true; the
    others stay in the mailbox, in order (selective receive). ``timeout_ms``
    bounds the wait (0: only what is already there); past it ReceiveTimeout (a
    TimeoutError) is raised. Raises ProcessExit when an exit signal has ended
    the process.
    """
    pid = self()
    t = _timeout(timeout_ms)
    if t != 0 and _node_loop is not None and asyncio._get_running_loop() is _node_loop:
        raise RuntimeError("receive() would block the node's event loop: use await aio.receive() in a coroutine")
    try:
        if match is None:
            # A queued message is taken without giving up the GIL.
            got = _fast("proc_try", pid.id, 0, None)
            if got:
                return got[0]
            return _call("proc_recv", pid.id, 0, t)
        deadline = None if t is None else time.monotonic() + t / 1000
        after = 0
        while True:
            left = None if deadline is None else max(0.0, (deadline - time.monotonic()) * 1000)
            seq, msg = _call("proc_peek", pid.id, after, left)
            if match(msg):
                _fast("proc_take", pid.id, seq, None)
                return msg
            after = seq
    except ProcessExit:
        _forget_self(pid)
        raise


async def areceive(timeout_ms: Optional[float] = None, match: Optional[Callable[[Any], bool]] = None) -> Any:
    """The awaitable receive (hornbeam_erlang.aio.receive)."""
    pid = self()
    t = _timeout(timeout_ms)
    deadline = None if t is None else time.monotonic() + t / 1000
    after = 0
    try:
        while True:
            try:
                seq, msg = _fast("proc_peek", pid.id, after, 0)
            except ReceiveTimeout:
                left = None if deadline is None else max(0.0, (deadline - time.monotonic()) * 1000)
                if left == 0:
                    raise
                fut = asyncio.get_running_loop().create_future()
                _hornbeam.call_async(fut, "proc_wait", pid.id, after, left)
                if not await fut and deadline is not None and time.monotonic() >= deadline:
                    raise ReceiveTimeout("receive timed out") from None
                continue
            if match is None or match(msg):
                _fast("proc_take", pid.id, seq, None)
                return msg
            after = seq
    except ProcessExit:
        _forget_self(pid)
        raise


# ---- names ------------------------------------------------------------------


def register(name: str, pid: Optional[Pid] = None) -> None:
    """Register ``pid`` (default: the caller) under ``name`` on this node.
    ValueError if the name is taken or the process already has one."""
    if not isinstance(name, str):
        raise TypeError("register(): name must be a str")
    _fast("proc_register", _pid(pid), None, name)


def unregister(name: str) -> None:
    """Remove the registered ``name``; ValueError if it is not registered."""
    if not isinstance(name, str):
        raise TypeError("unregister(): name must be a str")
    _fast("proc_unregister", name)


def whereis(name: str) -> Optional[Pid]:
    """The pid registered as ``name`` on this node, or None."""
    if not isinstance(name, str):
        raise TypeError("whereis(): name must be a str")
    return _fast("proc_whereis", name)


def registered() -> List[str]:
    """The names registered on this node, sorted."""
    return _fast("proc_registered")


def _pid(pid: Optional[Pid]) -> Pid:
    if pid is None:
        return self()
    if type(pid) is not Pid:
        raise TypeError(f"want a Pid, not {type(pid).__name__}")
    return pid


# ---- monitors and links ------------------------------------------------------


def monitor(pid: Pid) -> str:
    """Monitor ``pid``: when it ends, the caller receives
    ``('DOWN', ref, 'process', pid, reason)``, reason being ``'normal'``, the
    exception text, ``'noproc'`` (already gone), ``'noconnection'`` (its node
    went down or became unreachable) or ``'shutdown'`` (its node stopped).
    Returns ref."""
    return _fast("proc_monitor", self(), _pid(pid), "")


def demonitor(ref: str) -> bool:
    """Stop the monitor ``ref``; False if it was not active (or already fired)."""
    if not isinstance(ref, str):
        raise TypeError("demonitor(): ref must be what monitor() returned")
    me = self()
    return _fast("proc_demonitor", me, me, ref)


def link(pid: Pid) -> None:
    """Link the caller and ``pid``: when either ends abnormally, the other gets
    an exit signal (ProcessExit at its next receive, or an ``('EXIT', pid,
    reason)`` message if it traps exits)."""
    _fast("proc_link", self(), _pid(pid), "")


def unlink(pid: Pid) -> None:
    """Remove the link between the caller and ``pid``."""
    _fast("proc_unlink", self(), _pid(pid), "")


def trap_exit(flag: bool) -> bool:
    """Receive exit signals as ``('EXIT', pid, reason)`` messages (True) or be
    ended by them (False); returns the previous setting."""
    return _fast("proc_trap_exit", self().id, bool(flag))


def exit(pid: Pid, reason: str) -> None:
    """Send an exit signal to ``pid``, as Erlang's exit/2: ``'kill'`` ends it
    whatever it traps; ``'normal'`` is ignored by a process that does not trap
    exits; anything else ends it, or arrives as ``('EXIT', self(), reason)``
    if it traps exits."""
    if not isinstance(reason, str):
        raise TypeError("exit(): reason must be a str")
    _fast("proc_exit_signal", self(), _pid(pid), reason)


def is_alive(pid: Pid) -> bool:
    """Whether ``pid`` is a live process (asking its node when it is remote;
    False if that node is down)."""
    return _call("proc_is_alive", _pid(pid))


# ---- groups -----------------------------------------------------------------


def join(group: str, pid: Optional[Pid] = None) -> None:
    """Add ``pid`` (default: the caller; a process of this node) to ``group``,
    which is cluster-wide, as Erlang's pg."""
    _fast("pg_join", _group(group), _pid(pid), None)


def leave(group: str, pid: Optional[Pid] = None) -> bool:
    """Remove ``pid`` (default: the caller) from ``group``; False if it was not in it."""
    return _fast("pg_leave", _group(group), _pid(pid), None)


def members(group: str) -> List[Pid]:
    """The members of ``group`` on every node, sorted by node and number.
    Processes leave their groups when they end, and with their node."""
    return _fast("pg_members", _group(group), None, None)


def publish(group: str, msg: Any) -> int:
    """Send ``msg`` to every member of ``group``; returns to how many it was sent
    (a local member whose mailbox is full is skipped)."""
    return _fast("pg_publish", _group(group), None, msg)


def _group(group: Any) -> str:
    if not isinstance(group, str):
        raise TypeError(f"group must be a str, not {type(group).__name__}")
    return group


__all__ = [
    "Pid", "self", "node", "spawn", "spawn_link", "send", "receive", "register", "unregister",
    "whereis", "registered", "monitor", "demonitor", "link", "unlink", "trap_exit", "exit",
    "is_alive", "join", "leave", "members", "publish",
]
