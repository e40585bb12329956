"""Resource-aware DAGs of Python functions, run on this node or across the cluster.

    from hornbeam_dag import DAG, Function, execute_distributed

    dag = (DAG()
           .add_function(Function("data", [], "pipeline:load"))
           .add_function(Function("features", ["data"], "pipeline:heavy", cost={"cpu": 4, "memory": 2000}))
           .add_function(Function("scores", ["features"], "pipeline:score", cost={"gpu": 1})))
    dag.validate()
    results = execute_distributed(dag, max_retries=3, outputs=["scores"])

Nodes declare capabilities (``--capability gpu=1``, ``register_local_node``;
otherwise ``cpu``, ``memory`` in MB and ``gpu`` as detected); a function's
``cost`` is reserved on its node while it runs, so no node runs more than it
declared at once. Results stay on the node that made them and go straight to
the nodes whose functions need them; the caller receives only the outputs it
asks for. A node lost mid-run has its running functions retried elsewhere and
the results it held that are still needed recomputed.
"""

import asyncio
from typing import Any, Dict, Hashable, Optional, Sequence

from . import _scheduler, aio
from ._dag import DAG, CyclicDependency, DAGError, DAGFailed, Function, MissingFunction, Unschedulable
from ._local import execute
from ._nodes import discover_nodes, register_local_node


def execute_distributed(dag: DAG, max_retries: int = 3, allocation: str = "load_balanced",
                        outputs: Optional[Sequence[Hashable]] = None,
                        timeout_ms: Optional[float] = None) -> Dict[Hashable, Any]:
    """Run ``dag`` across this node (unless it is hidden) and every visible node;
    return ``{id: result}`` for every regular function, or only ``outputs``.

    ``allocation="load_balanced"`` sends each function to the node with room
    that is least loaded in the resources it costs (then fewest running, then
    holding most of its inputs); ``"first_available"`` to the first node with
    room, this node first. A function that raises, or whose node goes down, is
    retried up to ``max_retries`` times (its own ``max_retries`` wins), on
    another node where one fits. Raises DAGError (MissingFunction,
    CyclicDependency, bad code or cost) and Unschedulable before anything runs,
    DAGFailed when retries are spent or ``timeout_ms`` passes. Functions' code
    is resolved by module and name on the node that runs them, so it must live
    in a module on every node's python path (not ``__main__``). Inside a
    coroutine, use ``hornbeam_dag.aio.execute_distributed``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("execute_distributed would block this event loop: "
                           "await hornbeam_dag.aio.execute_distributed(...) instead")
    return _scheduler.run_sync(dag, max_retries, allocation, outputs, timeout_ms)


__all__ = [
    "Function",
    "DAG",
    "DAGError",
    "MissingFunction",
    "CyclicDependency",
    "Unschedulable",
    "DAGFailed",
    "register_local_node",
    "discover_nodes",
    "execute",
    "execute_distributed",
    "aio",
]
