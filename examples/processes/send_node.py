"""The slides' first example, run as a node:

    (foo@node)1> S = self().
    (foo@node)2> spawn('bar@node', s, send_node, [S]).
    (foo@node)3> flush().
    Shell got 'bar@node'
"""
import sys

from hornbeam_erlang import nodes, receive, self, spawn

bar = sys.argv[1] if len(sys.argv) > 1 else "bar@127.0.0.1"
S = self()
print(spawn(bar, "s", "send_node", [S]))
print("Shell got", repr(receive(5000)))
