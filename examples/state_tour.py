"""A tour of node-wide state: run with `bin/hornbeam run examples/state_tour.py`.

Every state function, and a nested value with a big int, bytes, a tuple and a
numpy array that comes back with its types intact.
"""
import threading

import numpy as np

from hornbeam_erlang import (
    node,
    state_decr,
    state_delete,
    state_get,
    state_get_multi,
    state_incr,
    state_keys,
    state_set,
)


def main() -> None:
    print(f"node: {node()}")

    value = {
        "big": 2**100 + 1,
        "blob": b"\x00\x01\xfe\xff",
        "pair": ("left", ("nested", 3)),
        "vector": np.linspace(0.0, 1.0, 384, dtype=np.float32),
        "matrix": np.arange(12, dtype=np.int64).reshape(3, 4),
    }
    state_set("tour:value", value)
    back = state_get("tour:value")
    assert back["big"] == value["big"]
    assert back["blob"] == value["blob"]
    assert back["pair"] == value["pair"] and isinstance(back["pair"][1], tuple)
    for k in ("vector", "matrix"):
        assert back[k].dtype == value[k].dtype and back[k].shape == value[k].shape
        assert np.array_equal(back[k], value[k])
    print("round trip: big int, bytes, tuple and numpy arrays intact")

    def hit(n: int) -> None:
        for _ in range(n):
            state_incr("tour:hits")

    threads = [threading.Thread(target=hit, args=(1000,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"8 threads x 1000 state_incr -> {state_get('tour:hits')}")
    print(f"state_decr by 500 -> {state_decr('tour:hits', 500)}")

    state_set("tour:session", {"user": 123}, ttl=30)
    print(f"keys under 'tour:': {state_keys('tour:')}")
    print(f"get_multi: {state_get_multi(['tour:hits', 'tour:missing'])}")

    try:
        state_incr("tour:session")
    except TypeError as e:
        print(f"state_incr on a dict -> TypeError: {e}")

    for k in state_keys("tour:"):
        state_delete(k)
    assert state_keys("tour:") == []
    print("deleted; all checks passed")


if __name__ == "__main__":
    main()
