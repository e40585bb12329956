#!/usr/bin/env bash
# Starts a three-node cluster on loopback (cpu1 and cpu2 with no GPU, gpu1
# declaring one), runs examples/dag/demo.py as a hidden driver node, then runs
# it again while killing cpu2 mid-DAG; stops every node it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/nodes.sh
export HORNBEAM_COOKIE="dag-demo-$RANDOM$RANDOM"

start() {
	local name=$1
	shift
	start_node "$name" --name "$name@127.0.0.1" --pythonpath examples/dag "$@"
}

start cpu1 --capability cpu=2 --capability gpu=0
seed=$(logged cpu1 cluster)
start cpu2 --join "$seed" --capability cpu=2 --capability gpu=0
start gpu1 --join "$seed" --capability cpu=1 --capability gpu=1

driver() {
	"$bin" run --name "driver$1@127.0.0.1" --hidden --join "$seed" --pythonpath examples/dag examples/dag/demo.py "${@:2}"
}
echo "== the pipeline on three nodes"
driver 1
echo
echo "== again, killing cpu2 mid-run: its work is retried and recomputed on the others"
driver 2 --kill-node "cpu2@127.0.0.1=${pids[1]}"
