#!/usr/bin/env bash
# The distributed ML example on loopback: two worker nodes and a web node
# serving app.py, real HTTP requests against it, then every node stopped by
# PID. Used by `make demo`. The workers use the hash fallback encoder unless
# sentence-transformers and the model's weights are installed (see README).
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
export HORNBEAM_COOKIE="ml-demo-$RANDOM$RANDOM"
export HORNBEAM_ML_FALLBACK=${HORNBEAM_ML_FALLBACK-hash}

# start LOGNAME ARGS...: a node in the background; waits for its "node started" line.
start() {
	local log=$1
	shift
	"$bin" start --pythonpath examples/distributed_ml "$@" 2>"$logs/$log.log" &
	pids+=($!)
	for _ in $(seq 300); do
		grep -q 'msg="node started"' "$logs/$log.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "node $log did not start:" >&2
	cat "$logs/$log.log" >&2
	return 1
}

start worker1 --name worker1@127.0.0.1 --cluster-port 0 --threads 16
seed=$(grep -o 'cluster=[^ ]*' "$logs/worker1.log" | head -1 | cut -d= -f2)
start worker2 --name worker2@127.0.0.1 --join "$seed" --threads 16
start web app:app --name web@127.0.0.1 --join "$seed" -b 127.0.0.1:0
url=http://$(grep -o 'http=[^ ]*' "$logs/web.log" | head -1 | cut -d= -f2)
echo "web node web@127.0.0.1 serves $url; workers worker1, worker2 (cluster seed $seed)"
python3 examples/distributed_ml/demo_client.py "$url"
