#!/usr/bin/env bash
# Erlang peer for the process benchmark: two local Erlang nodes; `!` round
# trips and one-way messages between processes on the two nodes and within
# one (hb_msg_bench). Prints one JSON line on stdout; everything else goes to
# stderr (erlang_pair.sh runs the nodes).
#
# Needs Debian's erlang-base (erl, erlc, epmd). Tunables (environment):
#   ERL_BENCH_CALLS    round trips per latency figure     (default 20000)
#   ERL_BENCH_ONEWAY   messages per one-way figure        (default 200000)
#   ERL_BENCH_VM_FLAGS extra emulator flags for both nodes (default none)
set -euo pipefail

CALLS=${ERL_BENCH_CALLS:-20000}
ONEWAY=${ERL_BENCH_ONEWAY:-200000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$HERE/erlang_pair.sh" msg "hb_msg_bench" hb_msg_bench "$CALLS" "$ONEWAY"
