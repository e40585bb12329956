"""Process bodies and a per-direction suite for tests/process_test.go."""
import asyncio
import os
import time

import hornbeam_erlang as he
from hornbeam_erlang import aio


def echo():
    while True:
        m = he.receive()
        if m == "stop":
            return
        he.send(m[0], ("echo", m[1]))


async def aecho():
    while True:
        m = await aio.receive()
        if m == "stop":
            return
        he.send(m[0], ("aecho", m[1]))


def named_echo(name, report):
    he.register(name)
    he.send(report, ("registered", name))
    echo()


def collect(report, n):
    he.send(report, ("collecting", he.self()))
    he.send(report, [he.receive(10000) for _ in range(n)])


def selective(report):
    he.send(report, ("ready", he.self()))
    first = he.receive(10000, match=lambda m: m[0] == "b")
    rest = [he.receive(1000) for _ in range(2)]
    he.send(report, [first] + rest)


def crash(msg):
    raise ValueError(msg)


def wait_forever():
    he.receive()


def joiner(group, report):
    he.join(group)
    he.send(report, ("joined", he.self()))
    he.receive(match=lambda m: m == "stop")


def trapper(report):
    he.trap_exit(True)
    he.send(report, ("ready", he.self()))
    while True:
        he.send(report, ("got", he.receive()))


def sink():
    time.sleep(3600)


def publish_from_here(group, msg):
    return he.publish(group, msg)


def getpid():
    return os.getpid()


def local_busy():
    """Fills a local mailbox: returns how many messages went in before Busy."""
    p = he.spawn(he.node(), "proctest", "sink")
    n = 0
    try:
        while n < 1_000_000:
            he.send(p, n)
            n += 1
    except he.Busy:
        return n
    return -1


def flush():
    while True:
        try:
            he.receive(0)
        except he.ReceiveTimeout:
            return


def _down(ref, timeout=5000):
    return he.receive(timeout, match=lambda m: isinstance(m, tuple) and m[0] == "DOWN" and m[1] == ref)


def suite(dst):
    """Every process function from this node towards dst; returns checks."""
    me = he.self()
    flush()
    out = {}
    p = he.spawn(dst, "proctest", "echo")
    out["spawn_node"] = he.node(p) == dst
    he.send(p, (me, 1))
    out["send_receive"] = he.receive(5000) == ("echo", 1)
    a = he.spawn(dst, "proctest", "aecho")
    he.send(a, (me, 2))
    out["task_process"] = he.receive(5000) == ("aecho", 2)
    out["is_alive"] = he.is_alive(p) and he.is_alive(a)

    name = "pt_" + he.node().split("@")[0]
    n = he.spawn(dst, "proctest", "named_echo", [name, me])
    out["registered"] = he.receive(5000) == ("registered", name)
    he.send((name, dst), (me, 3))
    out["send_name_node"] = he.receive(5000) == ("echo", 3)
    out["whereis"] = he.rpc_call(dst, "hornbeam_erlang", "whereis", [name]) == n
    out["registered_list"] = name in he.rpc_call(dst, "hornbeam_erlang", "registered", [])
    he.send(n, "stop")

    c = he.spawn(dst, "proctest", "collect", [me, 10000])
    _, cp = he.receive(5000)
    for i in range(10000):
        he.send(cp, i)
    out["order_10000"] = he.receive(20000) == list(range(10000))

    s = he.spawn(dst, "proctest", "selective", [me])
    _, sp = he.receive(5000)
    he.send(sp, ("a", 1))
    he.send(sp, ("c", 3))
    time.sleep(0.05)
    he.send(sp, ("b", 2))
    out["selective"] = he.receive(5000) == [("b", 2), ("a", 1), ("c", 3)]

    ref = he.monitor(p)
    he.send(p, "stop")
    out["monitor_normal"] = _down(ref) == ("DOWN", ref, "process", p, "normal")
    out["is_alive_after"] = not he.is_alive(p)
    x = he.spawn(dst, "proctest", "crash", ["remote"])
    ref = he.monitor(x)
    r = _down(ref)[4]
    out["monitor_exception"] = r in ("ValueError: remote", "noproc")
    ref = he.monitor(x)
    out["monitor_noproc"] = _down(ref)[4] == "noproc"
    w = he.spawn(dst, "proctest", "wait_forever")
    ref = he.monitor(w)
    out["demonitor"] = he.demonitor(ref)
    he.exit(w, "kill")
    try:
        _down(ref, 300)
        out["demonitor"] = False
    except he.ReceiveTimeout:
        pass

    he.trap_exit(True)
    try:
        k = he.spawn_link(dst, "proctest", "crash", ["linked"])
        got = he.receive(5000, match=lambda m: m[0] == "EXIT")
        out["spawn_link_exit"] = got == ("EXIT", k, "ValueError: linked") or repr((got, k))
        w = he.spawn(dst, "proctest", "wait_forever")
        he.link(w)
        he.exit(w, "die")
        got = he.receive(5000, match=lambda m: m[0] == "EXIT")
        out["link_exit"] = got == ("EXIT", w, "die") or repr((got, w))
        w = he.spawn(dst, "proctest", "wait_forever")
        he.link(w)
        he.unlink(w)
        ref = he.monitor(w)
        he.exit(w, "kill")
        out["unlink"] = _down(ref)[4] == "killed"
        try:
            got = he.receive(300, match=lambda m: m[0] == "EXIT")
            out["unlink"] = repr((got, w))
        except he.ReceiveTimeout:
            pass
    finally:
        he.trap_exit(False)

    t = he.spawn(dst, "proctest", "trapper", [me])
    _, tp = he.receive(5000)
    he.exit(tp, "soft")
    out["remote_trap_exit"] = he.receive(5000) == ("got", ("EXIT", me, "soft"))
    ref = he.monitor(tp)
    he.exit(tp, "kill")
    out["exit_kill"] = _down(ref)[4] == "killed"

    group = "pt_group_" + he.node().split("@")[0]
    j = he.spawn(dst, "proctest", "joiner", [group, me])
    _, jp = he.receive(5000)
    he.join(group)
    deadline = time.time() + 5
    while len(he.members(group)) < 2 and time.time() < deadline:
        time.sleep(0.01)
    out["members_here"] = set(he.members(group)) == {me, jp}
    # Groups are eventually consistent, as pg: the join reaches dst by its own way.
    deadline = time.time() + 5
    while len(he.rpc_call(dst, "hornbeam_erlang", "members", [group])) < 2 and time.time() < deadline:
        time.sleep(0.01)
    out["members_there"] = set(he.rpc_call(dst, "hornbeam_erlang", "members", [group])) == {me, jp}
    out["publish_there"] = he.rpc_call(dst, "proctest", "publish_from_here", [group, "hi"]) == 2
    out["publish_received"] = he.receive(5000) == "hi"
    out["leave"] = he.leave(group)
    deadline = time.time() + 5
    while he.rpc_call(dst, "hornbeam_erlang", "members", [group]) != [jp] and time.time() < deadline:
        time.sleep(0.01)
    out["left_there"] = he.rpc_call(dst, "hornbeam_erlang", "members", [group]) == [jp]
    he.send(jp, "stop")
    flush()
    return out


def watch_and_kill(victim, signum):
    """Spawns watched processes on victim, then signals its OS process and
    reports how long DOWN and EXIT took to arrive here."""
    import signal
    me = he.self()
    flush()
    w = he.spawn(victim, "proctest", "wait_forever")
    ref = he.monitor(w)
    he.trap_exit(True)
    lw = he.spawn_link(victim, "proctest", "wait_forever")
    group = "pt_dead"
    j = he.spawn(victim, "proctest", "joiner", [group, me])
    _, jp = he.receive(5000)
    deadline = time.time() + 5
    while jp not in he.members(group) and time.time() < deadline:
        time.sleep(0.01)
    in_group = jp in he.members(group)
    ospid = he.rpc_call(victim, "proctest", "getpid", [])
    t0 = time.monotonic()
    os.kill(ospid, signum)
    down = _down(ref, 10000)
    t_down = time.monotonic() - t0
    exit_msg = he.receive(10000, match=lambda m: m[0] == "EXIT")
    t_exit = time.monotonic() - t0
    he.trap_exit(False)
    return {"down": [str(down[3]), down[4]], "down_s": t_down, "exit": [str(exit_msg[1]), exit_msg[2]], "exit_s": t_exit,
            "in_group_before": in_group, "in_group_after": jp in he.members(group),
            "pid": str(w), "linked": str(lw)}


# ---- hornbeam_dist -------------------------------------------------------------


def slow(s, value):
    time.sleep(s)
    return value


async def aslow(s, value):
    await asyncio.sleep(s)
    return value


async def cancellable(key, seconds=30):
    """Records in state whether it ran to the end or was cancelled."""
    he.state_set(key, "running")
    try:
        await asyncio.sleep(seconds)
        he.state_set(key, "finished")
    except asyncio.CancelledError:
        he.state_set(key, "cancelled")
        raise


def state(key):
    return he.state_get(key)


def whoami():
    return he.node()


def setup_router(table):
    """Installs this node's own table for the router 'kv' (tables differ per node)."""
    import hornbeam_dist
    hornbeam_dist.Router([(m, n) for m, n in table], "kv")
    return True


def route(key):
    import hornbeam_dist._router as r
    return r._routers["kv"].route(key, "proctest", "whoami")
