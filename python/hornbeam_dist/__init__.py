"""Erlang-style distribution: connecting to nodes, pinging and watching them;
remote tasks (``async_call``) and routing requests to the node that owns a key
(``Router``, ``HashRouter``). ``hornbeam_dist.testing`` is a pytest plugin that
starts real nodes for a test.

    from hornbeam_dist import connect, ping, async_call
    connect('gpu@192.168.1.20')       # or a cluster address: connect('10.0.0.5:4370')
    ping('gpu@192.168.1.20')          # 'pong' or 'pang'
    task = async_call('gpu@192.168.1.20', 'ml', 'encode', [texts])
    vectors = task.result(5)          # or: await task
"""


import _hornbeam

from hornbeam_erlang import demonitor_node, monitor_node, node, node_info, nodes, ping


def connect(node_or_host_port: str) -> bool:
    """Reach a node by name (True when it answers), or join the cluster that a
    route listener ``HOST:PORT`` belongs to (True once a node there is seen)."""
    if not isinstance(node_or_host_port, str):
        raise TypeError("connect() takes a node name or 'HOST:PORT'")
    return _hornbeam.call("connect", node_or_host_port)


def disconnect(node: str) -> bool:
    """Forget ``node`` locally, like erlang:disconnect_node: it leaves nodes(),
    its monitors see 'nodedown' and calls to it raise NodeDown, until connect()
    or ping() reaches it again. Returns whether the node was known."""
    return _hornbeam.call("disconnect", node)



from ._router import HashRouter, NoRoute, Router  # noqa: E402
from ._tasks import Task, async_call  # noqa: E402

__all__ = ["connect", "disconnect", "ping", "nodes", "node", "node_info", "monitor_node", "demonitor_node",
           "async_call", "Task", "Router", "HashRouter", "NoRoute"]
