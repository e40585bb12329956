"""Processes on one node: pids, spawn, send, receive, names, monitors, links,
groups, bounds. The same functions between nodes are tested in
tests/process_test.go."""
import asyncio
import pickle
import sys
import threading
import time

import pytest

import hornbeam_erlang as he
from hornbeam_erlang import (
    Busy,
    NoProcess,
    Pid,
    ProcessExit,
    ReceiveTimeout,
    aio,
    demonitor,
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

sys.path.insert(0, __file__.rsplit("/", 1)[0])
NODE = node()


def flush():
    while True:
        try:
            receive(0)
        except ReceiveTimeout:
            return


@pytest.fixture(autouse=True)
def clean_mailbox():
    flush()
    trap_exit(False)
    yield
    flush()


def down(ref, timeout=5000):
    return receive(timeout, match=lambda m: isinstance(m, tuple) and m[0] == "DOWN" and m[1] == ref)


def test_pid_is_immutable_hashable_and_prints_as_erlang():
    me = self()
    assert self() is me or self() == me
    assert repr(me) == f"<{NODE}.{me.id}.0>"
    assert node(me) == NODE and node() == NODE
    assert {me: 1}[Pid(me.node, me.id)] == 1
    with pytest.raises(AttributeError):
        me.node = "x"
    assert pickle.loads(pickle.dumps(me)) == me
    with pytest.raises(TypeError):
        node("not a pid")


def test_pids_travel_inside_messages_and_state():
    me = self()
    msg = (me, [me, {"k": me}], {me: "as key"})
    send(me, msg)
    assert receive(1000) == msg
    he.state_set("t:pid", me)
    assert he.state_get("t:pid") == me
    he.state_delete("t:pid")


def test_threads_and_tasks_get_their_own_pids():
    got = []
    t = threading.Thread(target=lambda: got.append(self()))
    t.start()
    t.join()

    async def two():
        return await asyncio.gather(_pid_of_task(), _pid_of_task())

    a, b = asyncio.run(two())
    assert len({self(), got[0], a, b}) == 4


async def _pid_of_task():
    return self()


def test_receive_order_of_10000_messages():
    me = self()
    for i in range(10000):
        send(me, i)
    assert [receive(1000) for _ in range(10000)] == list(range(10000))


def test_receive_timeout_is_a_timeout_error():
    t = time.monotonic()
    with pytest.raises(ReceiveTimeout) as e:
        receive(50)
    assert isinstance(e.value, TimeoutError)
    assert time.monotonic() - t >= 0.04
    with pytest.raises(ReceiveTimeout):
        receive(0)
    with pytest.raises(ValueError):
        receive(-1)


def test_selective_receive_keeps_the_others_in_order():
    me = self()
    for m in [("a", 1), ("b", 2), ("a", 3), ("b", 4)]:
        send(me, m)
    assert receive(1000, match=lambda m: m[0] == "b") == ("b", 2)
    assert receive(1000, match=lambda m: m[1] == 4) == ("b", 4)
    assert [receive(0), receive(0)] == [("a", 1), ("a", 3)]
    with pytest.raises(ReceiveTimeout):
        receive(30, match=lambda m: True)


def test_selective_receive_waits_for_a_later_match():
    me = self()
    p = spawn(NODE, "procmod", "selective", [me])
    _, pid = receive(2000)
    send(pid, ("a", 1))
    send(pid, ("c", 3))
    time.sleep(0.05)
    send(pid, ("b", 2))
    assert receive(2000) == [("b", 2), ("a", 1), ("c", 3)]


def test_spawn_thread_and_task_processes():
    me = self()
    p = spawn(NODE, "procmod", "echo")
    send(p, (me, 1))
    assert receive(2000) == ("echo", 1)
    a = spawn(NODE, "procmod", "aecho", (1,))
    send(a, (me, 2))
    assert receive(2000) == ("aecho", 2)
    send(p, "stop")


def test_spawn_unknown_function_is_bad_rpc():
    with pytest.raises(he.BadRPC):
        spawn(NODE, "procmod", "nope")
    with pytest.raises(he.BadRPC):
        spawn(NODE, "no_such_module_xyz", "f")
    with pytest.raises(TypeError):
        spawn(NODE, "procmod", "echo", "notalist")


def test_registered_names():
    p = spawn(NODE, "procmod", "echo")
    register("t_echo", p)
    assert whereis("t_echo") == p and "t_echo" in registered()
    with pytest.raises(ValueError):
        register("t_echo", self())
    send("t_echo", (self(), "x"))
    assert receive(2000) == ("echo", "x")
    send(("t_echo", NODE), (self(), "y"))
    assert receive(2000) == ("echo", "y")
    unregister("t_echo")
    assert whereis("t_echo") is None
    with pytest.raises(NoProcess):
        send("t_echo", 1)
    with pytest.raises(ValueError):
        unregister("t_echo")
    register("t_echo2", p)
    ref = monitor(p)
    send(p, "stop")
    down(ref)
    assert whereis("t_echo2") is None, "a name goes with its process"


@pytest.mark.parametrize("fn,args,reason", [
    ("echo", None, "normal"),
    ("crash_when_told", ["bad"], "ValueError: bad"),
    ("acrash_when_told", [], "KeyError: 'k'"),
])
def test_monitor_reasons(fn, args, reason):
    # The process ends only once told, after the monitor is set: a crash
    # before monitor() would be seen as 'noproc', as in Erlang.
    p = spawn(NODE, "procmod", fn, args or [])
    ref = monitor(p)
    send(p, "stop")
    assert down(ref) == ("DOWN", ref, "process", p, reason)
    assert not is_alive(p)


def test_monitor_noproc_and_demonitor():
    p = spawn(NODE, "procmod", "crash")
    r0 = monitor(p)
    down(r0)
    ref = monitor(p)
    assert down(ref)[4] == "noproc"
    q = spawn(NODE, "procmod", "echo")
    ref = monitor(q)
    assert is_alive(q)
    assert demonitor(ref) is True
    assert demonitor(ref) is False
    send(q, "stop")
    with pytest.raises(ReceiveTimeout):
        down(ref, 200)


def test_link_kills_a_process_that_does_not_trap():
    me = self()
    w = spawn(NODE, "procmod", "wait_forever")
    a = spawn(NODE, "procmod", "await_forever")
    rw, ra = monitor(w), monitor(a)
    c = spawn(NODE, "procmod", "sink")
    for x in (w, a):
        rpc_link(x, c)
    he.exit(c, "stop it")
    assert down(rw)[4] == "stop it"
    assert down(ra)[4] == "stop it"


def rpc_link(a, b):
    # a link made from a's side, as if a had called link(b)
    he._process._call("proc_link", a, b, "")


def test_a_task_not_in_receive_is_cancelled_by_an_exit_signal():
    me = self()
    p = spawn(NODE, "procmod", "sleep_forever", [me])
    assert receive(2000) == ("started", p)
    ref = monitor(p)
    he.exit(p, "go away")
    assert down(ref)[4] == "go away"


def test_trap_exit_turns_signals_into_messages():
    me = self()
    t = spawn(NODE, "procmod", "trapper", [me])
    assert receive(2000) == ("ready", t)
    c = spawn(NODE, "procmod", "wait_forever")
    rpc_link(t, c)
    he.exit(c, "bye")
    assert receive(2000) == ("EXIT", c, "bye")
    he.exit(t, "not fatal")
    assert receive(2000) == ("EXIT", me, "not fatal")
    ref = monitor(t)
    he.exit(t, "kill")
    assert down(ref)[4] == "killed"


def test_spawn_link_and_own_trap_exit():
    assert trap_exit(True) is False
    c = spawn_link(NODE, "procmod", "crash", ["linked"])
    assert receive(2000) == ("EXIT", c, "ValueError: linked")
    n = spawn_link(NODE, "procmod", "echo")
    send(n, "stop")
    assert receive(2000) == ("EXIT", n, "normal")
    assert trap_exit(False) is True


def test_unlink():
    trap_exit(True)
    p = spawn_link(NODE, "procmod", "echo")
    unlink(p)
    ref = monitor(p)
    he.exit(p, "kill")
    assert down(ref)[4] == "killed"
    with pytest.raises(ReceiveTimeout):
        receive(200, match=lambda m: m[0] == "EXIT")


def test_link_to_a_dead_process_is_noproc():
    trap_exit(True)
    p = spawn(NODE, "procmod", "crash")
    ref = monitor(p)
    down(ref)
    link(p)
    assert receive(2000) == ("EXIT", p, "noproc")


def test_an_adopted_thread_gets_process_exit_at_its_receive():
    out = {}

    def body():
        me = self()
        out["pid"] = me
        ready.set()
        try:
            receive(5000)
        except ProcessExit as e:
            out["reason"] = e.reason
        out["new"] = self()

    ready = threading.Event()
    t = threading.Thread(target=body)
    t.start()
    ready.wait(5)
    he.exit(out["pid"], "stop")
    t.join(5)
    assert out["reason"] == "stop"
    assert out["new"] != out["pid"]


def test_groups_join_leave_members_publish():
    me = self()
    p = spawn(NODE, "procmod", "echo")
    join("t_room")
    join("t_room", p)
    assert members("t_room") == sorted([me, p], key=lambda x: x.id)
    assert publish("t_room", (me, "hi")) == 2
    assert receive(2000, match=lambda m: m == ("echo", "hi")) == ("echo", "hi")
    assert receive(2000) == (me, "hi")
    assert leave("t_room") is True and leave("t_room") is False
    ref = monitor(p)
    send(p, "stop")
    down(ref)
    assert members("t_room") == []
    assert publish("t_room", 1) == 0


def test_spawned_process_count_returns_to_zero():
    before = he.node_info(NODE)["processes"]["processes"]
    refs = []
    for _ in range(50):
        p = spawn(NODE, "procmod", "echo")
        refs.append(monitor(p))
        send(p, "stop")
    for r in refs:
        down(r)
    assert he.node_info(NODE)["processes"]["processes"] == before


def test_aio_receive_with_timeout_and_match():
    async def main():
        me = self()
        with pytest.raises(ReceiveTimeout):
            await aio.receive(30)
        send(me, 1)
        send(me, 2)
        assert await aio.receive(1000, match=lambda m: m == 2) == 2
        assert await aio.receive(1000) == 1

        async def later():
            await asyncio.sleep(0.05)
            send(me, "late")

        asyncio.ensure_future(later())
        assert await aio.receive(2000) == "late"
        # a cancelled receive loses no message; helper tasks act for their process
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aio.receive(), 0.02)
        send(me, "kept")
        assert await asyncio.wait_for(aio.receive(), 1) == "kept"
        assert await asyncio.create_task(_pid_of_task()) == me
    asyncio.run(main())


def test_blocking_receive_on_the_node_loop_is_refused():
    assert he.rpc_call(NODE, "procmod", "loop_receive", []) is True
