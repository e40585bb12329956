# Sourced by the examples' run_demo.sh scripts: starts hornbeam nodes in the
# background on loopback and stops every one of them (by PID) however the
# script ends. Run from the repository root.
bin=${HORNBEAM_BIN:-bin/hornbeam}
logs=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$logs"
}
trap cleanup EXIT

# start_node LOG ARGS...: `hornbeam start ARGS...` in the background, its log
# in $logs/LOG.log; waits for its "node started" line.
start_node() {
	local log=$1
	shift
	"$bin" start "$@" 2>"$logs/$log.log" &
	pids+=($!)
	for _ in $(seq 300); do
		grep -q 'msg="node started"' "$logs/$log.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "node $log did not start:" >&2
	cat "$logs/$log.log" >&2
	return 1
}

# logged LOG KEY: the value of KEY=... on LOG's "node started" line.
logged() {
	grep 'msg="node started"' "$logs/$1.log" | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2
}
