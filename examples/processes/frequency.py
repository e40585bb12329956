"""The frequency server of the slides, reachable from other nodes:

    call(Message, ServerNode) ->
        {frequency, ServerNode} ! {request, self(), Message},
        receive {reply, Reply} -> Reply end.
    reply(Pid, Message) -> Pid ! {reply, Message}.

It allocates radio frequencies to clients; `start()` runs it, registered as
`frequency`, on the node it is spawned on.
"""
from hornbeam_erlang import receive, register, self, send


def start(frequencies=(10, 11, 12, 13, 14, 15)):
    register("frequency")
    loop(list(frequencies), {})


def loop(free, allocated):
    while True:
        _, pid, message = receive(match=lambda m: isinstance(m, tuple) and m[0] == "request")
        if message == "allocate":
            if free:
                f = free.pop(0)
                allocated[f] = pid
                reply(pid, ("ok", f))
            else:
                reply(pid, ("error", "no_frequency"))
        elif isinstance(message, tuple) and message[0] == "deallocate":
            f = message[1]
            if allocated.get(f) == pid:
                del allocated[f]
                free.append(f)
            reply(pid, "ok")
        elif message == "stop":
            reply(pid, "ok")
            return


def call(message, server_node, timeout_ms=5000):
    send(("frequency", server_node), ("request", self(), message))
    return receive(timeout_ms, match=lambda m: isinstance(m, tuple) and m[0] == "reply")[1]


def reply(pid, message):
    send(pid, ("reply", message))
