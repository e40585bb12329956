"""Python-side figures for the bridge benchmarks; writes JSON to sys.argv[1].

Each figure is the median of several timeit repeats, beside the floor: the same
operation in plain Python (a dict increment, cbor2 from Debian).
"""
import json
import statistics
import sys
import timeit

import cbor2
import numpy as np

import _hornbeam
from hornbeam_erlang import state_get, state_incr, state_set

import benchmod

REPEAT = 7


def ops_per_sec(stmt, number, g):
    times = timeit.Timer(stmt, globals=g).repeat(repeat=REPEAT, number=number)
    return number / statistics.median(times)


def main(out_path):
    res = {"conversions": [], "state": {}, "calls": {}}

    values = {
        "384-float list": ([float(i) / 7 for i in range(384)], 20000),
        "384-float32 numpy array": (np.arange(384, dtype=np.float32) / 7, 50000),
        "20-key dict": ({f"key{i}": (i if i % 3 else f"value{i}") for i in range(20)}, 50000),
        "1 MiB bytes": (bytes(range(256)) * 4096, 2000),
    }
    for name, (v, n) in values.items():
        g = {"enc": _hornbeam.encode, "dec": _hornbeam.decode, "v": v, "c2": cbor2, "np": np}
        g["b"] = _hornbeam.encode(v)
        row = {
            "value": name,
            "encode": ops_per_sec("enc(v)", n, g),
            "decode": ops_per_sec("dec(b)", n, g),
        }
        if isinstance(v, np.ndarray):
            # cbor2 knows no numpy: its floor is the raw buffer through cbor2 and back.
            g["fb"] = cbor2.dumps(v.tobytes())
            row["floor_encode"] = ops_per_sec("c2.dumps(v.tobytes())", n, g)
            row["floor_decode"] = ops_per_sec("np.frombuffer(c2.loads(fb), dtype=np.float32)", n, g)
            row["floor"] = "cbor2 of arr.tobytes() / np.frombuffer"
        else:
            g["fb"] = cbor2.dumps(v)
            row["floor_encode"] = ops_per_sec("c2.dumps(v)", n, g)
            row["floor_decode"] = ops_per_sec("c2.loads(fb)", n, g)
            row["floor"] = "cbor2"
        res["conversions"].append(row)

    n = 1_000_000
    g = {"incr": state_incr, "d": {}, "get": state_get, "set": state_set}
    res["state"]["state_incr"] = ops_per_sec("incr('bench:n')", n, g)
    res["state"]["dict increment"] = ops_per_sec("d['n'] = d.get('n', 0) + 1", n, g)
    res["state"]["state_get"] = ops_per_sec("get('bench:n')", n, g)
    res["state"]["dict get"] = ops_per_sec("d.get('n')", n, g)
    res["state"]["state_set (small int)"] = ops_per_sec("set('bench:s', 1)", n, g)
    res["state"]["dict set"] = ops_per_sec("d['s'] = 1", n, g)

    g = {"f": benchmod.noop}
    res["calls"]["python noop call (floor)"] = ops_per_sec("f()", 2_000_000, g)

    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
