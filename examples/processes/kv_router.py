"""Elixir's KV.Router (Distributed tasks and tags) in Python.

The table sends buckets a-m to foo and n-z to bar; each node routes a request
it receives again with its own table. Set KV_TABLE to change it, e.g.
``KV_TABLE="a-m=foo@127.0.0.1,n-z=bar@127.0.0.1"``.
"""
import os

from hornbeam_dist import Router


def table():
    spec = os.environ.get("KV_TABLE", "a-m=foo@127.0.0.1,n-z=bar@127.0.0.1")
    return [tuple(entry.split("=", 1)) for entry in spec.split(",")]


_router = None


def setup(tbl=None):
    """Installs this node's router (its table: tbl, else KV_TABLE)."""
    global _router
    _router = Router([tuple(e) for e in tbl] if tbl else table(), "kv")
    return True


def route(bucket, mod, fun, args):
    """Dispatch the given mod, fun, args request to the node that owns bucket."""
    if _router is None:
        setup()
    return _router.route(bucket, mod, fun, args)
