"""The health check every node serves: ``health.check()`` and ``health.ping()``.

``check`` returns facts about the node; it has no 'status' key, which
cluster_health adds ('healthy', 'timeout' or 'error').
"""

import os
import threading

from hornbeam_erlang import node

import faults


def check():
    faults.apply("health.check")
    return {
        "node": node(),
        "pid": os.getpid(),
        "load1": round(os.getloadavg()[0], 2),
        "threads": threading.active_count(),
    }


def ping():
    faults.apply("health.ping")
    return "pong"
