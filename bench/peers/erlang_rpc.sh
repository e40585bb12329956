#!/usr/bin/env bash
# Erlang peer for the RPC benchmark: two local Erlang nodes, one calling
# hb_echo:echo/1 on the other with rpc:call and erpc:call. Prints one JSON
# line on stdout; everything else goes to stderr (erlang_pair.sh runs the nodes).
#
# Needs Debian's erlang-base (erl, erlc, epmd). Tunables (environment):
#   ERL_BENCH_CALLS    sequential calls per latency figure (default 20000)
#   ERL_BENCH_SECONDS  seconds per throughput figure     (default 3)
#   ERL_BENCH_VM_FLAGS extra emulator flags for both nodes (default none)
set -euo pipefail

CALLS=${ERL_BENCH_CALLS:-20000}
SECS=${ERL_BENCH_SECONDS:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$HERE/erlang_pair.sh" rpc "hb_echo hb_rpc_bench" hb_rpc_bench "$CALLS" "$SECS"
