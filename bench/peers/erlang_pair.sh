#!/usr/bin/env bash
# Two local Erlang nodes for a benchmark peer: our own epmd on a free loopback
# port, a peer node, and a driver node running BENCH:main(Peer, Out, ARGS...),
# which writes one JSON line to Out; that line is printed on stdout and
# everything else goes to stderr. Every process is stopped by PID at exit.
#
#   erlang_pair.sh NAME "MODULES" BENCH ARGS...
# NAME names the logs and the temporary directory; MODULES are the .erl files
# (without suffix) beside this script to compile. Needs Debian's erlang-base
# (erl, erlc, epmd). ERL_BENCH_VM_FLAGS: extra emulator flags for both nodes.
set -euo pipefail

NAME=$1 MODULES=$2 BENCH=$3
shift 3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "erlang_$NAME: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in erl erlc epmd; do
	command -v "$tool" >/dev/null || die "$tool not found (install Debian's erlang-base)"
done

TMP=$(mktemp -d -t "hb-erlang-$NAME.XXXXXX")
PIDS=()  # everything started here, stopped in reverse order on exit

# Stop what we started, politely then firmly, each by its PID, then drop TMP.
cleanup() {
	local rc=$? i pid n
	trap - EXIT INT TERM HUP
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for ((n = 0; n < 50; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Our own epmd on a free loopback port rather than the default 4369: we never
# reuse or kill someone else's epmd, and a stale one cannot confuse the run.
# The nodes find it through ERL_EPMD_PORT; -start_epmd false below stops erl
# from spawning an untracked daemon if ours were gone.
EPMD_PID=
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	epmd -address 127.0.0.1 -port "$port" </dev/null >"$TMP/epmd.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for ((n = 0; n < 50; n++)); do
		# -names answering is not enough: another epmd may hold the port and
		# ours may have exited, so ours must also still be alive.
		if epmd -port "$port" -names >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null; then
			EPMD_PID=$pid
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	log "epmd on port $port did not come up: $(cat "$TMP/epmd.log")"
	kill "$pid" 2>/dev/null || true
done
[[ -n $EPMD_PID ]] || die "could not start epmd on a loopback port"
export ERL_EPMD_PORT=$port
log "epmd pid $EPMD_PID on 127.0.0.1:$port"

# Build into TMP: nothing compiled is left in the tree.
srcs=()
for m in $MODULES; do srcs+=("$HERE/$m.erl"); done
erlc -o "$TMP" "${srcs[@]}" >&2 || die "erlc failed"

# A fresh cookie per run, and HOME in TMP so erl neither reads nor creates the
# user's ~/.erlang.cookie.
COOKIE=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export HOME=$TMP
TAG=hb$$
PEER=${TAG}_peer@127.0.0.1
DRIVER=${TAG}_driver@127.0.0.1
# Distribution listens on loopback only.
NODE_FLAGS=(-noshell -start_epmd false -setcookie "$COOKIE" -pa "$TMP"
	-kernel inet_dist_use_interface '{127,0,0,1}')
# Word-split on purpose: a list of emulator flags.
# shellcheck disable=SC2206
NODE_FLAGS+=(${ERL_BENCH_VM_FLAGS:-})

# The peer halts itself after 120 s, so even if this script is SIGKILLed it
# does not linger. erl execs beam, so $! is the VM's own PID.
erl "${NODE_FLAGS[@]}" -name "$PEER" -eval 'timer:apply_after(120000, erlang, halt, [])' \
	</dev/null >&2 2>&1 &
PIDS+=($!)
log "peer $PEER pid $!"

# The driver waits up to 10 s for the peer to answer, then measures.
OUT=$TMP/result.json
erl "${NODE_FLAGS[@]}" -name "$DRIVER" -run "$BENCH" main "$PEER" "$OUT" "$@" \
	</dev/null >&2 2>&1 &
DRIVER_PID=$!
PIDS+=("$DRIVER_PID")
log "driver $DRIVER pid $DRIVER_PID: $BENCH $*"

# Bounded wait: the driver has its own 55 s watchdog; this is the backstop.
deadline=$((SECONDS + 58))
while kill -0 "$DRIVER_PID" 2>/dev/null; do
	((SECONDS < deadline)) || die "driver still running after 58 s"
	sleep 0.2
done
rc=0
wait "$DRIVER_PID" || rc=$?
((rc == 0)) || die "driver exited $rc"
[[ -s $OUT ]] || die "driver wrote no result"
cat "$OUT"
