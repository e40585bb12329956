"""Starts a chat member on each node given (and one here), says hello, and
prints what every member heard."""
import sys
import time

import chat
from hornbeam_erlang import members, node, receive, self, send, spawn

peers = sys.argv[1:] or ["foo@127.0.0.1", "bar@127.0.0.1"]
me = self()
names = [f"user{i}" for i in range(len(peers) + 1)]
pids = [spawn(n, "chat", "member", [name, me]) for n, name in zip(peers + [node()], names)]
for _ in pids:
    receive(5000, match=lambda m: m[0] == "joined")
deadline = time.time() + 5
while len(members("room")) < len(pids) and time.time() < deadline:
    time.sleep(0.01)
print("room:", members("room"))
print("sent to", chat.say("alice", "hello, room"))
for _ in pids:
    print(receive(5000, match=lambda m: m[0] == "heard"))
for p in pids:
    send(p, "leave")
