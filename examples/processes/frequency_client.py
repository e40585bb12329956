"""Allocates frequencies from the frequency server on another node."""
import sys
import time

import frequency
from hornbeam_erlang import rpc_call, spawn

server = sys.argv[1] if len(sys.argv) > 1 else "bar@127.0.0.1"
spawn(server, "frequency", "start", [[10, 11]])
while "frequency" not in rpc_call(server, "hornbeam_erlang", "registered", []):
    time.sleep(0.01)
a = frequency.call("allocate", server)
b = frequency.call("allocate", server)
c = frequency.call("allocate", server)
print("allocated", a, b, "then", c)
print("deallocate", frequency.call(("deallocate", a[1]), server))
print("allocate again", frequency.call("allocate", server))
frequency.call("stop", server)
