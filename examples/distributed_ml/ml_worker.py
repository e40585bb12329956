"""ml_worker: what the guide's Erlang module `ml_worker` does, in Python, on a
worker node. Web nodes call it with rpc_call(worker, 'ml_worker', ...).

encode() improves on the guide's ml_service.encode (kept as the guide wrote it):
each text is cached in the node's bounded LRU cache under a stable key (the
guide's hash(text) differs between processes), and all of a request's misses
go to the model in one call that the host batches with other requests'.
"""

import os
import resource
import threading

import hornbeam_ml
from hornbeam_erlang import node, state_incr
from hornbeam_ml import batched, cached_inference_batch

import ml_service

_inflight = 0
_lock = threading.Lock()


def encode(texts, model='default'):
    """Embeddings of texts as lists of floats, and how many came from the cache."""
    global _inflight
    with _lock:
        _inflight += 1
    try:
        state_incr('worker:encode_calls')
        vectors, cached = cached_inference_batch(
            lambda misses: list(hornbeam_ml.encode(misses, model)), texts, cache_prefix=f'emb:{model}')
        return {'embeddings': [v.tolist() for v in vectors], 'cached': cached, 'node': node()}
    finally:
        with _lock:
            _inflight -= 1


@batched(max_batch_size=64, max_wait_ms=5)
def embed(texts, model='default'):
    """One embedding per text. Concurrent calls (rpc_call(w, 'ml_worker', 'embed',
    [[text]]) from many clients) are coalesced by the host into few model calls."""
    state_incr('worker:embed_batches')
    return [v.tolist() for v in hornbeam_ml.get_model(model).encode(list(texts))]


def predict(input_data, model='default'):
    return ml_service.predict(input_data, model)


def get_load():
    """Requests encoding now, plus the 1-minute load average per CPU."""
    return _inflight + os.getloadavg()[0] / (os.cpu_count() or 1)


def info():
    return {
        'model': ml_service.get_model_info(),
        'models': hornbeam_ml.model_info(),
        'memory': {'max_rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss},
        'cache': hornbeam_ml.cache_stats(),
        'batches': hornbeam_ml.batch_stats(),
        'pid': os.getpid(),
    }
