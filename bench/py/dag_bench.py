"""execute_distributed over 3 nodes: per-function overhead of no-op DAGs.

argv: OUT (JSON path) WIDE CHAIN ROUNDS. The graphs are those of
bench/peers/dask_dag.py: one source, WIDE functions taking it and a sink
taking them all; a chain of CHAIN functions. Wall time over the number of
functions, median of ROUNDS, after a warm-up.
"""
import json
import statistics
import sys
import time

import hornbeam_dag as hd
from hornbeam_dag import DAG, Function
from hornbeam_erlang import nodes

OUT, WIDE, CHAIN, ROUNDS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
WORKERS = ["w1@127.0.0.1", "w2@127.0.0.1", "w3@127.0.0.1"]

deadline = time.time() + 15
while not all("cpu" in hd.discover_nodes().get(n, {}) for n in WORKERS):
    if time.time() > deadline:
        raise SystemExit(f"workers not seen: {nodes()}")
    time.sleep(0.02)


def wide(n):
    d = DAG().add_function(Function("s", [], "dagbench:noop"))
    for i in range(n):
        d.add_function(Function(i, ["s"], "dagbench:noop"))
    d.add_function(Function("sink", list(range(n)), "dagbench:count"))
    return d, "sink", n + 2, n


def chain(n):
    d = DAG().add_function(Function(0, [], "dagbench:inc"))
    for i in range(1, n):
        d.add_function(Function(i, [i - 1], "dagbench:inc"))
    return d, n - 1, n, n


out = {}
for name, make, n in [("wide", wide, WIDE), ("chain", chain, CHAIN)]:
    d, key, nfun, want = make(n)
    w, wk, _, ww = make(50)
    assert hd.execute_distributed(w, outputs=[wk])[wk] == ww
    per = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        r = hd.execute_distributed(d, outputs=[key])
        per.append((time.perf_counter() - t0) / nfun * 1e6)
        assert r[key] == want, r
    out[f"{name}_us_per_function"] = statistics.median(per)
    out[f"{name}_functions"] = nfun
    print(f"dag_bench: {name}: {[round(p, 1) for p in per]} µs per function", file=sys.stderr)
with open(OUT, "w") as f:
    json.dump(out, f)
