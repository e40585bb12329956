#!/usr/bin/env bash
# Starts a four-node cluster on loopback, runs demo.py as a fifth node, and
# stops every node it started (by PID) however the demo ends. Used by `make demo-rpc`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/nodes.sh
export HORNBEAM_COOKIE="demo-$RANDOM$RANDOM"

# start NAME [ARGS...]: the node NAME@127.0.0.1 serving examples/rpc.
start() {
	local name=$1
	shift
	start_node "$name" --name "$name@127.0.0.1" --pythonpath examples/rpc "$@"
}

start gpu1 --cluster-port 0
seed=$(logged gpu1 cluster)
echo "cluster seed: gpu1@127.0.0.1 at $seed"
for n in worker1 worker2 logger; do start "$n" --join "$seed"; done
"$bin" run --name web@127.0.0.1 --join "$seed" --pythonpath examples/rpc examples/rpc/demo.py
