"""Machine learning on hornbeam nodes.

- ``cached_inference(fn, input_data, ...)``: results kept in the node's bounded
  LRU cache; ``cached_inference_batch`` for lists; ``cache_stats()``, ``cache_clear()``.
- ``load_model`` / ``get_model`` / ``encode`` / ``model_info``: sentence-transformer
  embeddings (aliases ``default``, ``large``, ``multilingual``; ``HORNBEAM_MODEL_DIR``),
  with a named stand-in encoder when the node runs with ``--ml-fallback``.
- ``SentenceTransformer``: the real class where installed, else a drop-in.
- ``@batched``: concurrent calls coalesced by the host into fewer calls.
- ``gpu_nodes()`` / ``nodes_with(...)``: pick nodes by what they announced.
"""

from typing import Any, List

import _hornbeam
from hornbeam_erlang import node

from ._batching import batch_stats, batched
from ._cache import cache_clear, cache_stats, cached_inference, cached_inference_batch, stable_key
from ._models import (ALIASES, Model, ModelUnavailable, SentenceTransformer, encode, get_model,
                      load_model, model_info)


def nodes_with(**need: Any) -> List[str]:
    """The other visible nodes that announced what ``need`` asks, sorted.

    Numbers are minimums of capabilities (``gpu``: GPUs, ``cpu``: CPUs,
    ``memory_gb``); ``role="x"`` asks for a role given with ``--role``.
    ``nodes_with(gpu=1)`` is every node with a GPU.
    """
    role = need.pop("role", None)
    for k, v in need.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"nodes_with({k}=...) wants a number, not {type(v).__name__}")
    out = []
    for m in _hornbeam.call("members"):
        caps = m.get("capabilities") or {}
        if role is not None and role not in (m.get("roles") or []):
            continue
        if all(caps.get(k, 0) >= v for k, v in need.items()):
            out.append(m["name"])
    return out


def gpu_nodes(min_gpus: int = 1) -> List[str]:
    """The other visible nodes with at least ``min_gpus`` GPUs (detected with
    nvidia-smi when each node started)."""
    return nodes_with(gpu=min_gpus)


__all__ = [
    "ALIASES", "Model", "ModelUnavailable", "SentenceTransformer", "batch_stats", "batched",
    "cache_clear", "cache_stats", "cached_inference", "cached_inference_batch", "encode", "get_model", "gpu_nodes",
    "load_model", "model_info", "node", "nodes_with", "stable_key",
]
