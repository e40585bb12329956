#!/usr/bin/env bash
# Starts foo and bar on loopback, runs each process example against them as a
# third node, and stops every node it started (by PID) however it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/nodes.sh
export HORNBEAM_COOKIE="demo-$RANDOM$RANDOM"
start_node foo --name foo@127.0.0.1 --pythonpath examples/processes --cluster-port 0
seed=$(logged foo cluster)
start_node bar --name bar@127.0.0.1 --pythonpath examples/processes --join "$seed"
shell() { "$bin" run --name "shell$RANDOM@127.0.0.1" --join "$seed" --pythonpath examples/processes "$@"; }
echo "== send_node";        shell examples/processes/send_node.py bar@127.0.0.1
echo "== echo server";      shell examples/processes/echo_server.py bar@127.0.0.1
echo "== frequency server"; shell examples/processes/frequency_client.py bar@127.0.0.1
echo "== chat room";        shell examples/processes/chat_demo.py foo@127.0.0.1 bar@127.0.0.1
echo "== kv router tests"
absbin=$(realpath "$bin")
(cd examples/processes && HORNBEAM_BIN="$absbin" "$absbin" run --name "pytest$RANDOM@127.0.0.1" \
	--cluster-host 127.0.0.1 -m pytest -q -p no:cacheprovider -p hornbeam_dist.testing test_kv_router.py)
