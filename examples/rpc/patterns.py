"""The patterns of Hornbeam's "Distributed RPC" guide, runnable.

Each function is the guide's code unchanged; only the imports it lacked (time,
the hornbeam_erlang names) and the helpers it leaves to the reader
(local_inference, process, split_list, local_model) are added. The served
modules are in this directory: start the nodes with ``--pythonpath`` pointing
here (README.md has the commands; demo.py runs every pattern).

Node names carry roles, as in the guide: nodes whose name contains 'gpu' serve
embeddings, 'worker' nodes serve inference and batches, 'logger' the audit log.
"""

import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from hornbeam_erlang import nodes, ping, rpc_call, rpc_cast, state_get, state_incr, state_set

import batch_processor
import inference
import ml

# --- helpers the guide's code calls but does not define ----------------------


def local_inference(data):
    """Run inference in this process (the fallback when no worker is up)."""
    return inference.run(data)


def process(item):
    """Process one item in this process (parallel_inference's local path)."""
    return batch_processor.process_item(item)


def split_list(items, n):
    """Split items into n contiguous chunks whose sizes differ by at most one."""
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


# The local model of the "Local Fallback" practice: the ml module, run here.
local_model = ml


def wait_for_nodes(*names, timeout=10.0):
    """Wait until every named node is in nodes(); return nodes().

    Nodes see each other a fraction of a second after joining; call this before
    the first rpc_call of a script that has just joined a cluster.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = nodes()
        missing = [n for n in names if n not in seen]
        if not missing:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes {missing} not seen within {timeout}s (nodes(): {seen})")
        time.sleep(0.05)


# --- Distributed ML patterns: GPU node for inference --------------------------


def get_embedding(text):
    """Get embedding from GPU node."""
    gpu_nodes = [n for n in nodes() if 'gpu' in n]

    if not gpu_nodes:
        raise RuntimeError("No GPU nodes available")

    return rpc_call(
        gpu_nodes[0],
        'embedding_service',
        'encode',
        [text],
        timeout_ms=10000
    )


# --- Load balancing -----------------------------------------------------------


def balanced_inference(data):
    """Round-robin across worker nodes."""
    workers = [n for n in nodes() if 'worker' in n]

    if not workers:
        return local_inference(data)

    # Random selection (simple load balancing)
    node = random.choice(workers)

    try:
        return rpc_call(node, 'inference', 'run', [data], 30000)
    except Exception:
        # Failover to another node
        workers.remove(node)
        if workers:
            return rpc_call(workers[0], 'inference', 'run', [data], 30000)
        return local_inference(data)


# --- Parallel distributed processing ------------------------------------------


def parallel_inference(items):
    """Process items in parallel across nodes."""
    workers = [n for n in nodes() if 'worker' in n]

    if not workers:
        # Local processing
        return [process(item) for item in items]

    # Distribute items across workers
    chunks = split_list(items, len(workers))
    results = []

    with ThreadPoolExecutor(max_workers=len(workers)) as executor:
        futures = {}
        for node, chunk in zip(workers, chunks):
            future = executor.submit(
                rpc_call,
                node,
                'batch_processor',
                'process_batch',
                [chunk],
                60000
            )
            futures[future] = node

        for future in as_completed(futures):
            try:
                result = future.result()
                results.extend(result)
            except Exception as e:
                print(f"Node {futures[future]} failed: {e}")

    return results


# --- Error handling: timeouts -------------------------------------------------


def safe_rpc(node, module, function, args, timeout=5000, retries=3):
    """RPC with retry logic."""
    last_error = None

    for attempt in range(retries):
        try:
            return rpc_call(node, module, function, args, timeout)
        except TimeoutError:
            last_error = TimeoutError(f"Timeout after {timeout}ms")
            timeout = int(timeout * 1.5)  # Exponential backoff
        except ConnectionError as e:
            last_error = e
            time.sleep(0.1 * (attempt + 1))

    raise last_error


# --- Error handling: failover -------------------------------------------------


def resilient_call(service, function, args, timeout=10000):
    """Call with automatic failover."""
    service_nodes = [n for n in nodes() if service in n]

    for node in service_nodes:
        if ping(node) != 'pong':
            continue

        try:
            return rpc_call(node, service, function, args, timeout)
        except Exception as e:
            print(f"Node {node} failed: {e}")
            continue

    raise RuntimeError(f"All {service} nodes unavailable")


# --- Error handling: circuit breaker ------------------------------------------


class CircuitBreaker:
    def __init__(self, node, threshold=5, reset_timeout=60):
        self.node = node
        self.threshold = threshold
        self.reset_timeout = reset_timeout
        self.key = f"circuit:{node}"

    def is_open(self):
        state = state_get(self.key)
        if not state:
            return False

        if state.get('open'):
            # Check if reset timeout passed
            if time.time() - state.get('opened_at', 0) > self.reset_timeout:
                state_set(self.key, {'failures': 0, 'open': False})
                return False
            return True
        return False

    def record_failure(self):
        failures = state_incr(f"{self.key}:failures")
        if failures >= self.threshold:
            state_set(self.key, {
                'open': True,
                'opened_at': time.time(),
                'failures': failures
            })

    def record_success(self):
        state_set(self.key, {'failures': 0, 'open': False})

    def call(self, module, function, args, timeout=5000):
        if self.is_open():
            raise RuntimeError(f"Circuit open for {self.node}")

        try:
            result = rpc_call(self.node, module, function, args, timeout)
            self.record_success()
            return result
        except Exception as e:
            self.record_failure()
            raise


# --- Monitoring: node health --------------------------------------------------


def cluster_health():
    """Check health of all nodes."""
    health = {}

    for node in nodes():
        try:
            # Call health check on each node
            status = rpc_call(node, 'health', 'check', [], 5000)
            health[node] = {'status': 'healthy', **status}
        except TimeoutError:
            health[node] = {'status': 'timeout'}
        except Exception as e:
            health[node] = {'status': 'error', 'error': str(e)}

    return health


# --- Best practice 3: local fallback ------------------------------------------
# The guide names this one get_embedding too; here it is get_embedding_with_fallback.


def get_embedding_with_fallback(text):
    gpu_nodes = [n for n in nodes() if 'gpu' in n]

    if gpu_nodes:
        try:
            return rpc_call(gpu_nodes[0], 'ml', 'encode', [text], 10000)
        except Exception:
            pass

    # Local fallback
    return local_model.encode(text)


# --- Best practice 4: fire-and-forget for logging -----------------------------


def audit_login(user_id, ip, logger='logger@127.0.0.1'):
    """Record a login on the logger node without waiting for it."""
    # Don't wait for logging
    rpc_cast(logger, 'audit_log', 'record', [
        'user_action',
        {'user_id': user_id, 'action': 'login', 'ip': ip}
    ])
