"""The module `s` of the Erlang distribution slides, in Python.

    -module(s).
    send_node(To) -> To ! node().
    s() -> register(server, self()), l().
    l() -> receive {M, Pid} -> Pid ! M end, l().
"""
from hornbeam_erlang import node, receive, register, self, send


def send_node(to):
    send(to, node())


def s():
    register("server", self())
    l()


def l():
    while True:
        m, pid = receive()
        send(pid, m)
