#!/usr/bin/env bash
# Starts a four-node cluster on loopback, runs demo.py as a fifth node, and
# stops every node it started (by PID) however the demo ends. Used by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${HORNBEAM_BIN:-bin/hornbeam}
logs=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$logs"
}
trap cleanup EXIT
export HORNBEAM_COOKIE="demo-$RANDOM$RANDOM"

# start NAME [ARGS...]: a node in the background; waits for its "node started" line.
start() {
	local name=$1
	shift
	"$bin" start --name "$name@127.0.0.1" --pythonpath examples/rpc "$@" 2>"$logs/$name.log" &
	pids+=($!)
	for _ in $(seq 200); do
		grep -q 'msg="node started"' "$logs/$name.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "node $name did not start:" >&2
	cat "$logs/$name.log" >&2
	return 1
}

start gpu1 --cluster-port 0
seed=$(grep -o 'cluster=[^ ]*' "$logs/gpu1.log" | head -1 | cut -d= -f2)
echo "cluster seed: gpu1@127.0.0.1 at $seed"
for n in worker1 worker2 logger; do start "$n" --join "$seed"; done
"$bin" run --name web@127.0.0.1 --join "$seed" --pythonpath examples/rpc examples/rpc/demo.py
