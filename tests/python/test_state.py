"""Node-wide state as Python code uses it."""
import threading
import time

import pytest

import hornbeam_erlang as hb
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


@pytest.fixture(autouse=True)
def clean():
    for k in state_keys("t:"):
        state_delete(k)
    yield


def test_node_is_unnamed_without_a_cluster():
    assert node() == "nonode@nohost"


def test_get_set_delete():
    assert state_get("t:missing") is None
    state_set("t:a", {"x": [1, 2.5, "s", b"b", None, True]})
    assert state_get("t:a") == {"x": [1, 2.5, "s", b"b", None, True]}
    state_set("t:a", 7)
    assert state_get("t:a") == 7
    state_delete("t:a")
    assert state_get("t:a") is None
    state_delete("t:a")  # deleting a missing key is fine


def test_values_round_trip_with_their_types():
    np = pytest.importorskip("numpy")
    v = {"big": 2**100, "neg": -(2**70), "t": (1, (2, "x")), "b": b"\x00\xff", "arr": np.arange(6, dtype=np.float32).reshape(2, 3)}
    state_set("t:v", v)
    got = state_get("t:v")
    assert got["big"] == 2**100 and got["neg"] == -(2**70)
    assert got["t"] == (1, (2, "x")) and isinstance(got["t"], tuple)
    assert got["b"] == b"\x00\xff"
    assert got["arr"].dtype == np.float32 and got["arr"].shape == (2, 3)
    assert (got["arr"] == v["arr"]).all()


def test_incr_decr():
    assert state_incr("t:n") == 1
    assert state_incr("t:n") == 2
    assert state_incr("t:n", 10) == 12
    assert state_incr("t:n", delta=-2) == 10
    assert state_decr("t:n") == 9
    assert state_decr("t:n", 4) == 5
    assert state_decr("t:fresh") == -1
    assert state_get("t:n") == 5
    state_set("t:n", 41)
    assert state_incr("t:n") == 42


def test_incr_errors():
    state_set("t:s", "text")
    with pytest.raises(TypeError):
        state_incr("t:s")
    assert state_get("t:s") == "text"
    with pytest.raises(TypeError):
        state_incr("t:n", 1.5)
    with pytest.raises(TypeError):
        state_incr(123)
    state_set("t:max", 2**63 - 1)
    with pytest.raises(OverflowError):
        state_incr("t:max")
    assert state_get("t:max") == 2**63 - 1


def test_get_multi_and_keys():
    state_set("t:k:1", 1)
    state_set("t:k:2", 2)
    state_set("t:other", 3)
    assert state_get_multi(["t:k:1", "t:k:2", "t:nope"]) == {"t:k:1": 1, "t:k:2": 2, "t:nope": None}
    assert state_keys("t:k:") == ["t:k:1", "t:k:2"]
    assert state_keys(prefix="t:") == ["t:k:1", "t:k:2", "t:other"]
    assert set(state_keys()) >= {"t:k:1", "t:k:2", "t:other"}


def test_ttl():
    state_set("t:ttl", "v", ttl=0.2)
    state_set("t:keep", "v")
    assert state_get("t:ttl") == "v"
    time.sleep(0.35)
    assert state_get("t:ttl") is None
    assert "t:ttl" not in state_keys("t:")
    assert state_get("t:keep") == "v"
    with pytest.raises(ValueError):
        state_set("t:x", 1, ttl=-1)


def test_bad_arguments():
    with pytest.raises(TypeError, match="set"):
        state_set("t:x", {1, 2})
    with pytest.raises(TypeError):
        state_set("t:x")
    with pytest.raises(TypeError):
        state_get(b"bytes-key")
    with pytest.raises(TypeError):
        state_set("t:x", 1, nope=2)


def test_concurrent_incr_from_threads():
    n_threads, n = 8, 5000

    def work():
        for _ in range(n):
            state_incr("t:c")

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state_get("t:c") == n_threads * n


def test_module_exports():
    assert set(hb.__all__) <= set(dir(hb))


def test_keys_built_at_run_time_keep_their_values():
    # Keys made at run time are freed by Python after the call; the node must
    # have copied them.
    for i in range(200):
        state_incr("t:dyn:calls:" + str(i))
        state_set("t:dyn:v:" + str(i), {"v": i})
    junk = ["x" * 30 + str(i) for i in range(10000)]  # reuse the freed memory
    assert all(state_get("t:dyn:v:" + str(i)) == {"v": i} for i in range(200))
    assert all(state_get("t:dyn:calls:" + str(i)) == 1 for i in range(200))
    assert len(state_keys("t:dyn:")) == 400
    del junk
