"""The functions of the DAG example: a small analytics pipeline.

Every node imports this module by name (start them with --pythonpath
examples/dag), so the code travels as a name, never as a pickle.
"""

import hashlib
import time

from hornbeam_erlang import node


def source(n):
    """Load the raw records: here, n synthetic readings."""
    return [((i * 7919) % 1000) / 10.0 for i in range(n)]


def cpu_heavy(readings, rounds):
    """A CPU-bound feature extraction: hashes each reading `rounds` times."""
    out = []
    for r in readings:
        h = str(r).encode()
        for _ in range(rounds):
            h = hashlib.sha256(h).digest()
        out.append(h[0] / 255.0 + r)
    return {"features": out, "node": node()}


def gpu_score(features, pause):
    """The step that needs a GPU: scores the features (a stand-in model)."""
    time.sleep(pause)
    xs = features["features"]
    return {"score": sum(xs) / len(xs), "node": node(), "features_from": features["node"]}


def aggregate(*scores):
    """The report: every score and where each step ran."""
    return {"scores": [round(s["score"], 3) for s in scores],
            "gpu_steps_ran_on": sorted({s["node"] for s in scores}),
            "cpu_steps_ran_on": sorted({s["features_from"] for s in scores}),
            "aggregated_on": node()}
