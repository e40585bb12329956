"""A pipeline across the cluster: source -> cpu-heavy -> gpu -> aggregation.

Run by run_demo.sh as a hidden node (it drives the DAG and takes no work):
    hornbeam run --name driver@127.0.0.1 --hidden --join HOST:PORT \\
        --pythonpath examples/dag examples/dag/demo.py [--kill-node NODE]
"""

import argparse
import json
import os
import signal
import time

from hornbeam_dag import DAG, Function, discover_nodes, execute_distributed
from hornbeam_erlang import nodes, rpc_call

ap = argparse.ArgumentParser()
ap.add_argument("--nodes", type=int, default=3, help="wait for this many nodes")
ap.add_argument("--kill-node", help="kill this node (by its PID) while the DAG runs")
args = ap.parse_args()

deadline = time.time() + 15
while len([n for n, c in discover_nodes().items() if "cpu" in c and n in nodes()]) < args.nodes:
    if time.time() > deadline:
        raise SystemExit(f"waited 15 s for {args.nodes} nodes; see {nodes()}")
    time.sleep(0.05)

print("nodes and their capabilities (this driver is hidden: it takes no work):")
for name, caps in sorted(discover_nodes().items()):
    if name not in nodes():
        continue
    print(f"  {name}: cpu={caps.get('cpu'):g} memory={caps.get('memory'):g} MB gpu={caps.get('gpu'):g}")

dag = DAG()
dag.add_function(Function("source", [], "pipeline:source", extra_args=[2000]))
batches = 6
for b in range(batches):
    dag.add_function(Function(f"features_{b}", ["source"], "pipeline:cpu_heavy",
                              cost={"cpu": 1, "memory": 200}, extra_args=[40]))
    dag.add_function(Function(f"score_{b}", [f"features_{b}"], "pipeline:gpu_score",
                              cost={"gpu": 1, "memory": 500}, extra_args=[0.2]))
dag.add_function(Function("report", [f"score_{b}" for b in range(batches)], "pipeline:aggregate"))
dag.validate()

if args.kill_node:
    # Kill the node a moment into the run (the demo script passes its PID).
    name, pid = args.kill_node.split("=")
    import threading

    def kill():
        time.sleep(0.5)
        print(f"killing {name} (pid {pid}) mid-run", flush=True)
        os.kill(int(pid), signal.SIGKILL)
    threading.Thread(target=kill, daemon=True).start()

t0 = time.time()
result = execute_distributed(dag, max_retries=3, outputs=["report"])
print(f"DAG of {len(dag)} functions done in {time.time() - t0:.2f}s:")
print(json.dumps(result["report"], indent=2))
