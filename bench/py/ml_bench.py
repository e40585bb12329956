"""The ML benchmark's Python side, run with `hornbeam run`:

    ml_bench.py direct OUT             the encoder called in this process, batches of 1, 32, 256
    ml_bench.py concurrent NODE OUT    64 threads calling NODE one text each, batched or not
"""
import json
import statistics
import sys
import threading
import time

import hornbeam_ml


def texts(tag, n):
    return [f"{tag} sentence {i}: the quick brown fox jumps over the lazy dog near river {i * 7 % 101}"
            for i in range(n)]


def direct():
    model = hornbeam_ml.get_model()
    model.encode(texts("warm", 32))
    out = {}
    for size in (1, 32, 256):
        rates = []
        for r in range(3):
            n, t0, k = 0, time.perf_counter(), 0
            while time.perf_counter() - t0 < 2.0:
                model.encode(texts(f"d{size}-{r}-{k}", size))
                n += size
                k += 1
            rates.append(n / (time.perf_counter() - t0))
        out[str(size)] = statistics.median(rates)
    return out


def concurrent(node):
    from hornbeam_erlang import rpc_call
    out = {}
    for fn in ("embed", "embed_unbatched"):
        rpc_call(node, "mlbench", fn, [texts("warm", 8)], timeout_ms=60000)
        rates = []
        for r in range(3):
            stop = time.perf_counter() + 3.0
            counts = [0] * 64
            go = threading.Barrier(64)

            def worker(i):
                go.wait()
                k = 0
                while time.perf_counter() < stop:
                    rpc_call(node, "mlbench", fn, [[f"{fn} {r} {i} {k} the quick brown fox"]], timeout_ms=60000)
                    k += 1
                counts[i] = k

            t0 = time.perf_counter()
            ts = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            rates.append(sum(counts) / (time.perf_counter() - t0))
        out[fn] = statistics.median(rates)
    out["batches"] = rpc_call(node, "hornbeam_ml", "batch_stats", [])
    return out


if __name__ == "__main__":
    if sys.argv[1] == "direct":
        res, path = direct(), sys.argv[2]
    else:
        res, path = concurrent(sys.argv[2]), sys.argv[3]
    with open(path, "w") as f:
        json.dump(res, f)
