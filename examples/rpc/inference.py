"""The inference service the worker nodes serve: ``inference.run(data)``.

``predict`` stands in for a model: a deterministic label and score derived from
a hash of the input, the same on every node.
"""

import hashlib

from hornbeam_erlang import node

import faults


def predict(data):
    """{'label': 'positive' | 'negative', 'score': 0..1} from sha256(repr(data))."""
    digest = hashlib.sha256(repr(data).encode("utf-8")).digest()
    score = round(int.from_bytes(digest[:2], "big") / 65535, 4)
    return {"label": "positive" if score >= 0.5 else "negative", "score": score}


def run(data):
    faults.apply("inference.run")
    return {"node": node(), "input": data, "prediction": predict(data)}
