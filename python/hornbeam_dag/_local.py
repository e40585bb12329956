"""execute: a DAG run on this node, one function at a time, in this thread."""

from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence

import hornbeam_erlang

from . import _nodes
from ._dag import DAG, DAGError, DAGFailed, Function, Unschedulable, code_target, resolve


def check_outputs(dag: DAG, outputs: Optional[Sequence[Hashable]]) -> Optional[List[Hashable]]:
    if outputs is None:
        return None
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, (list, tuple, set, frozenset)):
        raise TypeError("outputs must be a list of function ids")
    out = list(outputs)
    for o in out:
        fn = dag.functions.get(o)
        if fn is None:
            raise DAGError(f"output {o!r} is not a function of the DAG")
        if fn.type == "inline":
            raise DAGError(f"output {o!r} is an inline function: it is evaluated inside its dependents, "
                           "make it regular to receive its result")
    return out


def why_not(cost: Mapping[str, float], caps: Mapping[str, float]) -> Optional[str]:
    """None if ``cost`` fits in ``caps``, else what is short."""
    for k, v in cost.items():
        have = caps.get(k, 0)
        if v > have:
            return f"needs {k}={v}, has {have}" if k in caps else f"needs {k}={v}, which it does not declare"
    return None


def _callable(fn: Function, cache: Dict[Hashable, Callable[..., Any]]) -> Callable[..., Any]:
    f = cache.get(fn.id)
    if f is None:
        if callable(fn.code) and not isinstance(fn.code, (str, tuple, list)):
            f = fn.code
        else:
            f = resolve(*code_target(fn.id, fn.code))
        cache[fn.id] = f
    return f


def execute(dag: DAG, outputs: Optional[Sequence[Hashable]] = None, max_retries: int = 0) -> Dict[Hashable, Any]:
    """Run ``dag`` on this node, one function at a time, and return
    ``{id: result}`` for every regular function (or only ``outputs``).

    Functions whose cost exceeds this node's capabilities, or pinned to another
    node, raise Unschedulable before anything runs. A function that raises is
    retried ``max_retries`` times (or its own ``max_retries``), then DAGFailed
    carries its exception and the requested results that completed. Results no
    later function needs are dropped as the run goes, unless they are outputs.
    """
    order = dag.order()
    want = check_outputs(dag, outputs)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise DAGError("max_retries must be an int >= 0")
    fns = dag.functions
    me = hornbeam_erlang.node()
    caps = _nodes.local_capabilities()
    for fid in order:
        fn = fns[fid]
        if fn.type == "inline":
            continue
        if fn.node is not None and fn.node != me:
            raise Unschedulable(fid, fn.cost, fn.node, f"it is pinned to {fn.node}, and execute runs on {me} only")
        why = why_not(fn.cost, caps)
        if why:
            raise Unschedulable(fid, fn.cost, fn.node, f"{me} {why}")
    wanted = set(want) if want is not None else {f for f in order if fns[f].type != "inline"}
    # How many regular functions still need each result (through inline ones too).
    users: Dict[Hashable, int] = dict.fromkeys(order, 0)
    needs: Dict[Hashable, List[Hashable]] = {}
    for fid in order:
        fn = fns[fid]
        if fn.type == "inline":
            continue
        deps = _regular_deps(fns, fid)
        needs[fid] = deps
        for d in deps:
            users[d] += 1
    results: Dict[Hashable, Any] = {}
    cache: Dict[Hashable, Callable[..., Any]] = {}
    for fid in order:
        fn = fns[fid]
        if fn.type == "inline":
            continue
        limit = fn.max_retries if fn.max_retries is not None else max_retries
        attempt = 0
        while True:
            try:
                value = _call(fns, fn, results, cache)
                break
            except Exception as e:
                attempt += 1
                if attempt > limit:
                    raise DAGFailed(fid, me, e, {k: v for k, v in results.items() if k in wanted}) from e
        results[fid] = value
        for d in needs[fid]:
            users[d] -= 1
            if users[d] == 0 and d not in wanted:
                del results[d]
        if users[fid] == 0 and fid not in wanted:
            del results[fid]
    return {k: results[k] for k in (want if want is not None else results)}


def _regular_deps(fns: Dict[Hashable, Function], fid: Hashable) -> List[Hashable]:
    """The regular functions whose results ``fid`` needs, through inline arguments."""
    out: List[Hashable] = []
    seen = set()
    stack = list(fns[fid].args)
    while stack:
        a = stack.pop()
        if a in seen:
            continue
        seen.add(a)
        if fns[a].type == "inline":
            stack.extend(fns[a].args)
        else:
            out.append(a)
    return out


def _call(fns: Dict[Hashable, Function], fn: Function, results: Dict[Hashable, Any],
          cache: Dict[Hashable, Callable[..., Any]]) -> Any:
    inline: Dict[Hashable, Any] = {}

    def arg(a: Hashable) -> Any:
        f = fns[a]
        if f.type != "inline":
            return results[a]
        if a not in inline:
            inline[a] = _callable(f, cache)(*[arg(x) for x in f.args], *f.extra_args)
        return inline[a]

    return _callable(fn, cache)(*[arg(a) for a in fn.args], *fn.extra_args)
