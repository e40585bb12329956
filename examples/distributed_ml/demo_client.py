"""Sends the distributed ML demo's requests and prints what came back.

Standard library only: run with any python3, e.g. python3 demo_client.py http://127.0.0.1:8000
"""
import json
import sys
import urllib.error
import urllib.request


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def short(vec):
    return "[" + ", ".join(f"{x:+.3f}" for x in vec[:4]) + f", ... {len(vec)} floats]"


def main(base):
    texts = ["the cat sat on the mat", "a dog slept on the rug", "stock markets fell sharply"]
    for strategy in ("round_robin", "round_robin", "least_loaded", "consistent"):
        code, r = call(base, "POST", f"/infer?strategy={strategy}", {"texts": texts})
        print(f"POST /infer?strategy={strategy}: {code}, served by {r['node']}, {r['cached']} of {len(texts)} cached")
        for t, e in zip(texts, r["embeddings"]):
            print(f"    {t!r:32} {short(e)}")
    code, r = call(base, "POST", "/infer/parallel", {"texts": texts * 2})
    print(f"POST /infer/parallel: {code}, {len(r['embeddings'])} embeddings from {r['served_by']}")
    code, r = call(base, "POST", "/infer", {"texts": []})
    print(f"POST /infer with no texts: {code}, {r['detail'][0]['msg']}")
    code, r = call(base, "GET", "/cluster")
    print(f"GET /cluster: {code}, this node {r['this_node']}, {r['total_nodes']} nodes")
    for w in r["gpu_nodes"]:
        cache = w["cache"]
        models = ", ".join(m["model"] for m in w["models"]["models"]) or "none loaded"
        print(f"    {w['node']}: {w['status']}; cache {cache['hits']} hits / {cache['misses']} misses; model {models}")
    code, r = call(base, "GET", "/metrics")
    print(f"GET /metrics: {code}, {json.dumps(r)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
