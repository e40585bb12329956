"""The slides' registered server: spawn s:s() on bar, then
{server, 'bar@node'} ! {hi, self()} and receive hi back."""
import sys
import time

from hornbeam_erlang import receive, rpc_call, self, send, spawn

bar = sys.argv[1] if len(sys.argv) > 1 else "bar@127.0.0.1"
print(spawn(bar, "s", "s", []))
while "server" not in rpc_call(bar, "hornbeam_erlang", "registered", []):
    time.sleep(0.01)
send(("server", bar), ("hi", self()))
print("Shell got", repr(receive(5000)))
