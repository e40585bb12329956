"""The router tests of Elixir's distributed tasks guide, with the hornbeam_dist pytest plugin:

    hornbeam run --name test@127.0.0.1 -m pytest -p hornbeam_dist.testing examples/processes

The two nodes are started by the hornbeam_cluster fixture; without a node
name the distributed tests are skipped.
"""
import os

import pytest

import hornbeam_erlang as he
import kv_router
from hornbeam_dist import HashRouter, NoRoute

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.distributed
def test_route_requests_across_nodes(hornbeam_cluster):
    foo, bar = hornbeam_cluster(n=2, pythonpath=[HERE])
    table = [("a-m", foo), ("n-z", bar)]
    for n in (foo, bar):
        he.rpc_call(n, "kv_router", "setup", [table])
    kv_router.setup(table)
    assert kv_router.route("hello", "hornbeam_erlang", "node", []) == foo
    assert kv_router.route("world", "hornbeam_erlang", "node", []) == bar


def test_raises_on_unknown_entries():
    kv_router.setup([("a-m", "foo@127.0.0.1"), ("n-z", "bar@127.0.0.1")])
    with pytest.raises(NoRoute, match="could not find entry"):
        kv_router.route("\x00", "hornbeam_erlang", "node", [])


@pytest.mark.distributed
def test_hash_router_spreads_keys_over_live_nodes(hornbeam_cluster):
    started = hornbeam_cluster(n=2, pythonpath=[HERE])
    r = HashRouter("h", nodes=started + [he.node()])
    owners = {r.route(f"key{i}", "hornbeam_erlang", "node") for i in range(200)}
    assert owners == set(started) | {he.node()}
