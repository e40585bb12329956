#!/usr/bin/env bash
# The distributed ML example on loopback: two worker nodes and a web node
# serving app.py, real HTTP requests against it, then every node stopped by
# PID. Used by `make demo`. The workers use the hash fallback encoder unless
# sentence-transformers and the model's weights are installed (see README).
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/nodes.sh
export HORNBEAM_COOKIE="ml-demo-$RANDOM$RANDOM"
export HORNBEAM_ML_FALLBACK=${HORNBEAM_ML_FALLBACK-hash}

ml=examples/distributed_ml
start_node worker1 --name worker1@127.0.0.1 --cluster-port 0 --threads 16 --pythonpath $ml
seed=$(logged worker1 cluster)
start_node worker2 --name worker2@127.0.0.1 --join "$seed" --threads 16 --pythonpath $ml
start_node web app:app --name web@127.0.0.1 --join "$seed" -b 127.0.0.1:0 --pythonpath $ml
url=http://$(logged web http)
echo "web node web@127.0.0.1 serves $url; workers worker1, worker2 (cluster seed $seed)"
python3 $ml/demo_client.py "$url"
