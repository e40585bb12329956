"""A stand-in for an embedding model: a deterministic, hash-based vector.

It needs no GPU and no weights, and gives the same vector for the same text on
every node and every run, so the examples can check that a remote node computed
what a local call would. Swap in a real model (sentence-transformers, ...) here.
"""

import hashlib
import math

DIM = 8


def encode(text):
    """A unit-length vector of DIM floats derived from sha256(text)."""
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    raw = [(digest[i] - 127.5) / 127.5 for i in range(DIM)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def batch_encode(texts):
    return [encode(t) for t in texts]
