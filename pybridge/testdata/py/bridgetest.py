"""Targets for pybridge's Go tests."""
import asyncio
import contextvars
import sys
import threading
import time
import weakref

import _hornbeam


def add(a, b):
    return a + b


def echo(*args):
    return list(args)


def noop():
    return None


async def async_noop():
    return None


async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


async def async_echo(b):
    await asyncio.sleep(0)
    return b


def fail(msg):
    raise ValueError(msg)


async def async_fail(msg):
    await asyncio.sleep(0)
    raise KeyError(msg)


def unconvertible(*_):
    return {1, 2}


def spin(key):
    """Busy-loops until interrupted; records how it ended in node state."""
    try:
        while True:
            pass
    except BaseException as e:
        _hornbeam.state_set(key, type(e).__name__)
        raise


async def async_sleep(key, seconds):
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _hornbeam.state_set(key, "cancelled")
        raise
    return "slept"


def thread_name():
    return threading.current_thread().name


def go_sleep_parallel(n, ms):
    """Runs n Python threads that each call a Go function sleeping ms; returns elapsed s."""
    threads = [threading.Thread(target=_hornbeam.call, args=("sleep", ms)) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def go_error():
    try:
        _hornbeam.call("fail", "boom")
    except TimeoutError as e:
        return ["TimeoutError", str(e), getattr(e, "where", None)]
    return None


not_callable = 42


def add_path(d):
    sys.path.append(d)


def fuzz_roundtrip(data):
    """Decodes untrusted bytes; whatever decodes must re-encode stably."""
    v = _hornbeam.decode(data)
    b = _hornbeam.encode(v)
    if _hornbeam.encode(_hornbeam.decode(b)) != b:
        raise AssertionError("re-encoding is not stable")
    return None


async def go_async(ms):
    """Awaits a Go function through call_async on the node's own loop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    _hornbeam.call_async(fut, "sleep", ms)
    await fut
    fut2 = loop.create_future()
    _hornbeam.call_async(fut2, "fail")
    try:
        await fut2
    except TimeoutError as e:
        return ["TimeoutError", str(e), getattr(e, "where", None)]
    return None


def inplace_echo(sizes):
    """A Go function that reads its arguments in place, called with and
    without the GIL and awaited, with pieces of every size at once: each
    answer is the arguments it was given."""
    pieces = [bytes([i % 251]) * n for i, n in enumerate(sizes)]

    async def awaited():
        loop = asyncio.get_running_loop()
        futs = []
        for p in pieces:
            fut = loop.create_future()
            _hornbeam.call_async(fut, "inplace_echo", p, len(p))
            futs.append(fut)
        return await asyncio.gather(*futs)

    got = [_hornbeam.call("inplace_echo", p, len(p)) for p in pieces]
    got += [_hornbeam.call_fast("inplace_echo", p, len(p)) for p in pieces]
    got += asyncio.run(awaited())
    want = [(p, len(p)) for p in pieces] * 3
    return got == want


def go_async_foreign_loop(ms):
    """call_async from an event loop of the caller's own (asyncio.run in a pool thread)."""
    return asyncio.run(go_async(ms))


def sleep_c(seconds):
    """Blocks in C (time.sleep), where no interrupt reaches it."""
    time.sleep(seconds)


def maybe_awaitable(give):
    """A sync function that returns an awaitable only when asked; otherwise it
    says whether it runs on an event loop's thread."""
    if give:
        return asyncio.sleep(0)
    try:
        asyncio.get_running_loop()
        return "on the loop"
    except RuntimeError:
        return "on the pool"


class _NoLoopFuture(asyncio.Future):
    def get_loop(self):
        raise RuntimeError("get_loop() refused")


async def go_async_broken_get_loop(ms):
    """A future whose get_loop() raises is still settled by call_async."""
    fut = _NoLoopFuture(loop=asyncio.get_running_loop())
    _hornbeam.call_async(fut, "sleep", ms)
    # Not awaited: asyncio itself calls get_loop() on what it awaits.
    for _ in range(500):
        if fut.done():
            return "settled"
        await asyncio.sleep(0.01)
    return "never settled"


def big_bytes(n):
    return b"x" * n


async def async_big_bytes(n, seconds):
    await asyncio.sleep(seconds)
    return big_bytes(n)


def decoded_strings(items, mapping):
    """What the decoder made of items and of mapping's keys: each value as it
    came, its type, and whether each short ASCII key is the interned string."""
    keys_interned = all(sys.intern(k) is k for k in mapping if len(k) <= 32 and k.isascii())
    return [[[type(x).__name__, x] for x in items], keys_interned]


async def task_facts():
    """What a coroutine called from Go sees of the task that runs it."""
    task = asyncio.current_task()
    async with asyncio.timeout(5):  # refuses to run outside a task
        await asyncio.sleep(0)
    same = asyncio.current_task() is task
    return [isinstance(task, asyncio.Task), same, task in asyncio.all_tasks(), task.get_name()]


_request_var = contextvars.ContextVar("request_var")


async def context_fresh(v):
    """What a call finds of a context variable that each call sets: a call's
    context is its own, not what an earlier call left."""
    before = _request_var.get("unset")
    _request_var.set(v)
    return before


async def context_kept(v):
    """A call's context variable, set before it waits, after it waits."""
    _request_var.set(v)
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    return _request_var.get("unset")


async def cancel_own_task():
    """Cancels its own task before it ever waits: the CancelledError comes at
    its first await, as in any task."""
    asyncio.current_task().cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        return "cancelled at the await"
    return "not cancelled"


async def raise_cancelled():
    raise asyncio.CancelledError("by the app")


_kept = {"task": [], "weakly": [], "coro": []}


async def keep_task(how):
    """Keeps the task it runs in past its end: the task itself, a weak
    reference to it ("weakly"), or its coroutine ("coro")."""
    task = asyncio.current_task()
    _kept[how].append(weakref.ref(task) if how == "weakly" else task.get_coro() if how == "coro" else task)
    return True


async def runs_in_kept_task(how):
    """Whether this call runs in a task an earlier call kept (as keep_task):
    a task kept past its call must not run other calls, which a late
    cancel() would reach."""
    task = asyncio.current_task()
    mine = {"task": task, "weakly": task, "coro": task.get_coro()}[how]
    return any((k() if how == "weakly" else k) is mine for k in _kept[how])


async def tasks_alive():
    return len(asyncio.all_tasks())


async def task_timeout():
    async with asyncio.timeout(0.01):
        await asyncio.sleep(10)


async def anyio_move_on():
    import anyio

    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep(10)
    return scope.cancel_called


async def fail_at_once(msg):
    raise KeyError(msg)


_loop_errors = []


async def watch_loop_errors():
    """Records what the loop's exception handler is given from now on."""
    _loop_errors.clear()
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: _loop_errors.append(ctx.get("message")))


async def loop_errors():
    import gc

    gc.collect()
    await asyncio.sleep(0)
    asyncio.get_running_loop().set_exception_handler(None)
    return list(_loop_errors)


_factory_made = set()


async def set_task_factory(on):
    """Installs (or removes) a task factory that remembers the tasks it made."""

    def factory(loop, coro, **kw):
        t = asyncio.Task(coro, loop=loop, **kw)
        _factory_made.add(t)
        return t

    asyncio.get_running_loop().set_task_factory(factory if on else None)


async def made_by_factory():
    return asyncio.current_task() in _factory_made


def swap_target(how):
    """Changes what `bridgetest_swap.which` names, as a reload or a
    monkeypatch would: "make" makes the module, "set" reassigns the function,
    "module" puts a new module in sys.modules, "del" deletes the function."""
    import sys
    import types

    mod = sys.modules.get("bridgetest_swap")
    if how == "make":
        mod = types.ModuleType("bridgetest_swap")
        mod.which = lambda: "first"
        sys.modules["bridgetest_swap"] = mod
    elif how == "set":
        mod.which = lambda: "reassigned"
    elif how == "module":
        new = types.ModuleType("bridgetest_swap")
        new.which = lambda: "new module"
        sys.modules["bridgetest_swap"] = new
    elif how == "del":
        del mod.which


def echo_bytes(b):
    return b


_runs: dict = {}


def count_run(key):
    """Counts that a call with key ran; run_count reads the count."""
    _runs[key] = _runs.get(key, 0) + 1


def run_count(key):
    return _runs.get(key, 0)


def hold_gil(key, n):
    """Holds the GIL in C (a sum over a range) once it has said so in node state."""
    _hornbeam.state_set(key, "holding")
    return sum(range(n))


async def block_loop(key):
    """Blocks the event loop (not awaiting) from when it says so in node state
    until key + ":go" is set, so that the calls Go makes meanwhile reach the
    loop in one batch."""
    _hornbeam.state_set(key, "blocked")
    deadline = time.monotonic() + 10
    while _hornbeam.state_get(key + ":go") is None and time.monotonic() < deadline:
        time.sleep(0.001)


async def cancel_then_uncancel():
    """Cancels its own task and takes the cancel back, then ends at once."""
    task = asyncio.current_task()
    task.cancel()
    task.uncancel()


async def sleep_uncancelled():
    try:
        await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        return "cancelled"
    return "slept"


async def async_count_run(key):
    count_run(key)


_done_callbacks = []


async def leave_on_task(i):
    """Leaves a done callback and an attribute on its task; returns what an
    earlier call left there."""
    task = asyncio.current_task()
    task.add_done_callback(lambda _t: _done_callbacks.append(i))
    earlier = getattr(task, "left_by_call", None)
    task.left_by_call = i
    return earlier


async def done_callbacks_run():
    """The done callbacks leave_on_task's calls left that have run (and
    forgets them)."""
    for _ in range(100):
        await asyncio.sleep(0.001)
    ran = sorted(_done_callbacks)
    _done_callbacks.clear()
    return ran


async def close_own_coro():
    """Tries to close the coroutine of its own task, which is running."""
    await asyncio.sleep(0)
    try:
        asyncio.current_task().get_coro().close()
    except ValueError:
        return "refused"
    return "closed"


async def task_name_then_rename():
    """Its task's name, then renames the task."""
    task = asyncio.current_task()
    name = task.get_name()
    task.set_name("renamed")
    return name


async def _unwinding_child():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(0.001)  # unwinds over a step or two
        raise


async def cancel_own_then_await(what):
    """Cancels its own task, then awaits a future or a task of its own making
    (what): as in any task, that is cancelled and awaited to its end first,
    and the CancelledError comes from it."""
    loop = asyncio.get_running_loop()
    aw = loop.create_task(_unwinding_child()) if what == "task" else loop.create_future()
    asyncio.current_task().cancel()
    try:
        await aw
    except asyncio.CancelledError:
        return aw.done() and aw.cancelled()
    return "not cancelled"


def direct_writes(handle, pieces):
    """Writes each piece through a lent socket; the results of http_direct."""
    return [_hornbeam.http_direct(handle, p) for p in pieces]
