"""The driver of execute_distributed: an event-driven scheduler on an asyncio loop.

Every function is dispatched with one asynchronous rpc_call to
``hornbeam_dag._executor.run`` on the node chosen for it; its reply (a small
completion record, with the value only when the caller asked for that output)
and membership events are the only things that move the run forward. A node's
running costs are reserved when a function is sent and released when its reply
comes, so a node never holds more than its capabilities; functions that do not
fit anywhere now wait in ready queues, one per (cost, pin) class, without
polling.
"""

import asyncio
import logging
import uuid
from collections import deque
from typing import Any, Callable, Deque, Dict, Hashable, List, Optional, Sequence, Set, Tuple

import _hornbeam

import hornbeam_erlang
from hornbeam_erlang import NodeDown, RemoteError

from . import _nodes
from ._dag import DAG, DAGError, DAGFailed, Function, Unschedulable, code_target
from ._local import check_outputs, why_not

PENDING, READY, RUNNING, DONE = 0, 1, 2, 3

# Functions sent to one node and not answered yet, whatever their cost: bounds
# what a node queues for its pool threads and what the driver has in flight.
MAX_INFLIGHT_PER_NODE = 64
# Functions of a chain run in one call to a node (see _Run._segment).
MAX_SEGMENT = 64
# A node with this many calls unanswered gets up to MAX_BATCH more ready
# functions of the same cost in each further call...
COALESCE_AT = 8
# ... only for functions of a class that ran this quickly (seconds, on average):
# slow ones would wait behind each other in a batch instead of running in parallel.
BATCH_UNDER_S = 0.001
MAX_BATCH = 32
# A function whose inputs went missing this many times fails the run.
MAX_LOST = 16
# Results no function needs any more are dropped in batches of this many per node.
DROP_BATCH = 64

_EXECUTOR = "hornbeam_dag._executor"
_log = logging.getLogger("hornbeam_dag")
_ALLOCATIONS = ("load_balanced", "first_available")


def _target(fn: Function) -> Tuple[str, str]:
    mod, name = code_target(fn.id, fn.code)
    if mod == "__main__":
        raise DAGError(f"function {fn.id!r}: {name} is defined in __main__, which other nodes cannot "
                       "import; put it in a module on every node's python path")
    return mod, name


class _Run:
    def __init__(self, dag: DAG, max_retries: int, allocation: str,
                 outputs: Optional[Sequence[Hashable]]) -> None:
        order = dag.order()
        want_ids = check_outputs(dag, outputs)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise DAGError("max_retries must be an int >= 0")
        if allocation not in _ALLOCATIONS:
            raise DAGError(f"allocation must be 'load_balanced' or 'first_available', not {allocation!r}")
        self.first_available = allocation == "first_available"
        fns = dag.functions
        me = hornbeam_erlang.node()
        self.me = me
        my_caps, hidden = _nodes.local_node()
        caps = _nodes.discover_nodes()
        if hidden:
            del caps[me]
        else:
            caps[me] = my_caps
        # This node first (first_available prefers it, as Handoff does), then by name.
        self.nodes: List[str] = ([me] if me in caps else []) + sorted(n for n in caps if n != me)
        self.caps = caps

        reg = [f for f in order if fns[f].type != "inline"]
        index = {f: i for i, f in enumerate(reg)}
        n = len(reg)
        self.ids = reg
        self.n = n
        targets: Dict[Hashable, Tuple[str, str]] = {f: _target(fns[f]) for f in order}
        self.target = [targets[f] for f in reg]
        self.extra = [fns[f].extra_args for f in reg]
        for f in order:
            if fns[f].extra_args:
                try:
                    _hornbeam.encode(fns[f].extra_args)
                except (TypeError, ValueError) as e:
                    raise DAGError(f"function {f!r}: extra_args cannot travel to another node: {e}") from None
        self.pin = [fns[f].node for f in reg]
        self.limit = [fns[f].max_retries if fns[f].max_retries is not None else max_retries for f in reg]
        # Equal costs share one dict, so that a class of them is one ready queue.
        costs: Dict[Tuple, Dict[str, float]] = {}
        self.cost: List[Dict[str, float]] = []
        self.ckey: List[Tuple] = []
        for f in reg:
            key = (fns[f].node, tuple(sorted(fns[f].cost.items())))
            self.cost.append(costs.setdefault(key, dict(key[1])))
            self.ckey.append(key)
        for i, f in enumerate(reg):
            self._check_placeable(f, i)

        # Arguments: a list of regular indices, or (for functions with inline
        # arguments) a template the executor evaluates.
        self.args: List[Any] = [None] * n
        self.simple: List[bool] = [True] * n
        self.deps: List[List[int]] = [[] for _ in range(n)]
        for i, f in enumerate(reg):
            fn = fns[f]
            if all(fns[a].type != "inline" for a in fn.args):
                self.args[i] = [index[a] for a in fn.args]
                self.deps[i] = list(dict.fromkeys(self.args[i]))
            else:
                self.simple[i] = False
                deps: Dict[int, None] = {}
                self.args[i] = self._template(fns, fn.args, index, targets, deps)
                self.deps[i] = list(deps)
        self.consumers: List[List[int]] = [[] for _ in range(n)]
        for i in range(n):
            for d in self.deps[i]:
                self.consumers[d].append(i)
        self.want = [False] * n
        for f in (want_ids if want_ids is not None else reg):
            self.want[index[f]] = True
        self.keep = [bool(c) for c in self.consumers]

        self.state = [PENDING] * n
        self.remaining = [len(d) for d in self.deps]
        self.users = [len(c) for c in self.consumers]
        self.where: List[Optional[str]] = [None] * n
        self.attempts = [0] * n
        self.lost = [0] * n  # times an input of a function went missing
        self.avoid: List[Optional[Set[str]]] = [None] * n  # nodes where a function failed
        self.done_count = 0
        self.results: Dict[Hashable, Any] = {}
        self.order_out = want_ids
        self.running: Dict[str, int] = dict.fromkeys(self.nodes, 0)
        self.total_running = 0
        self.used: Dict[str, Dict[str, float]] = {nd: {} for nd in self.nodes}
        self.held: Dict[str, Set[int]] = {nd: set() for nd in self.nodes}
        self.drops: Dict[str, List[int]] = {nd: [] for nd in self.nodes}
        self.dead: Set[str] = set()
        self.touched: Set[str] = set()
        self.queues: Dict[Tuple, Deque[int]] = {}
        self.took: Dict[Tuple, float] = {}  # cost class -> how long its functions run, averaged
        self.run_id = uuid.uuid4().hex
        self.finished = False
        self.fut: Optional[asyncio.Future] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.monitors: List[Tuple[str, Callable[[str, str], Any]]] = []

    def _check_placeable(self, f: Hashable, i: int) -> None:
        cost, pin = self.cost[i], self.pin[i]
        if pin is not None:
            if pin not in self.caps:
                raise Unschedulable(f, cost, pin, f"it is pinned to {pin}, which is not a visible node")
            why = why_not(cost, self.caps[pin])
            if why:
                raise Unschedulable(f, cost, pin, f"it is pinned to {pin}, which {why}")
            return
        if not self.caps:
            raise Unschedulable(f, cost, None, "there are no nodes to run on (this node is hidden)")
        for k in cost:
            if cost[k] > 0 and not any(k in c for c in self.caps.values()):
                raise Unschedulable(f, cost, None, f"no node declares the resource {k!r}")
        whys = [f"{nd} {w}" for nd in self.nodes for w in [why_not(cost, self.caps[nd])] if w]
        if len(whys) == len(self.nodes):
            raise Unschedulable(f, cost, None, "; ".join(whys))

    def _template(self, fns: Dict[Hashable, Function], args: List[Hashable], index: Dict[Hashable, int],
                  targets: Dict[Hashable, Tuple[str, str]], deps: Dict[int, None]) -> list:
        out: list = []
        for a in args:
            fa = fns[a]
            if fa.type != "inline":
                out.append(index[a])
                deps[index[a]] = None
            else:
                mod, name = targets[a]
                out.append(("i", mod, name, self._template(fns, fa.args, index, targets, deps), fa.extra_args))
        return out

    def _fill(self, tmpl: list) -> list:
        where = self.where
        return [["r", a, where[a]] if isinstance(a, int) else ["i", a[1], a[2], self._fill(a[3]), a[4]]
                for a in tmpl]

    # --- running ----------------------------------------------------------

    async def run(self, timeout_ms: Optional[float]) -> Dict[Hashable, Any]:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.fut = loop.create_future()
        _live.add(self.run_id)
        try:
            for nd in self.nodes:
                if nd != self.me:
                    cb = self._monitor_callback(loop)
                    self.monitors.append((nd, cb))
                    hornbeam_erlang.monitor_node(nd, cb)
            if self.n == 0:
                return {}
            for i in range(self.n):
                if self.remaining[i] == 0:
                    self._ready(i)
            self._schedule()
            timeout = None if timeout_ms is None else timeout_ms / 1000.0
            try:
                await asyncio.wait_for(asyncio.shield(self.fut), timeout)
            except asyncio.TimeoutError:
                self.finished = True
                raise DAGFailed(None, None, TimeoutError(f"the DAG did not finish in {timeout_ms} ms"),
                                dict(self.results)) from None
            return self._outputs()
        finally:
            self.finished = True
            self._cleanup()

    def _monitor_callback(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, str], Any]:
        def cb(event: str, node: str) -> None:
            if event == "nodedown":
                try:
                    loop.call_soon_threadsafe(self._on_nodedown, node)
                except RuntimeError:
                    pass  # the loop is closed: the run is over
        return cb

    def _cleanup(self) -> None:
        _live.discard(self.run_id)
        for nd, cb in self.monitors:
            hornbeam_erlang.demonitor_node(nd, cb)
        # Nodes seen down too: one only cut off may be back. One that comes
        # back later asks whether the run lives (see alive).
        for nd in self.touched:
            try:
                hornbeam_erlang.rpc_cast(nd, _EXECUTOR, "release", [self.run_id])
            except Exception:
                pass  # a node gone: its results went with it

    def _outputs(self) -> Dict[Hashable, Any]:
        if self.order_out is None:
            return {f: self.results[f] for f in self.ids}
        return {f: self.results[f] for f in self.order_out}

    def _ready(self, i: int) -> None:
        self.state[i] = READY
        q = self.queues.get(self.ckey[i])
        if q is None:
            q = self.queues[self.ckey[i]] = deque()
        q.append(i)

    def _schedule(self) -> None:
        if self.finished:
            return
        state = self.state
        for q in self.queues.values():
            while q and not self.finished:
                i = q[0]
                if state[i] != READY:
                    q.popleft()
                    continue
                nd = self._place(i)
                if nd is None:
                    break
                q.popleft()
                batch = None
                if self.running[nd] >= COALESCE_AT and q and self.took.get(self.ckey[i], 1.0) < BATCH_UNDER_S:
                    # The node has more calls waiting than it has threads:
                    # more of the same class ride along in this call, one
                    # after another under one reservation.
                    batch = []
                    avoid = self.avoid
                    while q and len(batch) < MAX_BATCH:
                        j = q[0]
                        if state[j] != READY:
                            q.popleft()
                            continue
                        if avoid[j] and nd in avoid[j]:
                            break
                        batch.append(q.popleft())
                self._start(i, nd, batch)
        if self.total_running == 0 and not self.finished:
            self._stuck()

    def _stuck(self) -> None:
        # Nothing runs and nothing could be placed: the nodes able to run what
        # is left are gone.
        for q in self.queues.values():
            for i in q:
                if self.state[i] == READY:
                    err = Unschedulable(self.ids[i], self.cost[i], self.pin[i],
                                        "every node that could run it is down")
                    return self._fail(i, self.pin[i], err)
        for i in range(self.n):
            if self.state[i] != DONE:
                return self._fail(i, None, RuntimeError("hornbeam_dag: nothing runs and nothing is ready"))

    def _place(self, i: int) -> Optional[str]:
        cost = self.cost[i]
        pin = self.pin[i]
        cands = (pin,) if pin is not None else self.nodes
        avoid = self.avoid[i] or ()
        best = None
        best_score: Any = None
        for pos, nd in enumerate(cands):
            if nd in self.dead:
                continue
            r = self.running[nd]
            if r >= MAX_INFLIGHT_PER_NODE:
                continue
            used = self.used[nd]
            caps = self.caps[nd]
            load = 0.0
            fits = True
            for k, v in cost.items():
                total = used.get(k, 0.0) + v
                have = caps.get(k, 0.0)
                if total > have + 1e-9:
                    fits = False
                    break
                if have > 0 and total / have > load:
                    load = total / have
            if not fits:
                continue
            if self.first_available:
                score: Any = (nd in avoid, pos)
            else:
                score = (nd in avoid, load, r)
            if best_score is None or score < best_score:
                best, best_score = nd, score
            elif score == best_score and not self.first_available:
                # Equal load: run where more of the inputs already are.
                where = self.where
                mine = sum(1 for d in self.deps[i] if where[d] == nd)
                theirs = sum(1 for d in self.deps[i] if where[d] == best)
                if mine > theirs:
                    best = nd
        return best

    def _segment(self, i: int, nd: str) -> Tuple[List[int], Dict[str, float]]:
        """``i`` and the chain after it that can run in the same call on ``nd``.

        A function whose only argument is the previous one's result, and that
        is that result's only user, would be sent to the same node the moment
        its input is made: running it in the same call saves a round trip to
        this node per link. The reservation is the largest of the chain's
        costs, key by key; its functions run one after another, so the node
        never holds more than that.
        """
        seg = [i]
        res = self.cost[i]
        used, caps = self.used[nd], self.caps[nd]
        consumers, deps, state, pin, avoid = self.consumers, self.deps, self.state, self.pin, self.avoid
        cur = i
        while len(seg) < MAX_SEGMENT:
            cons = consumers[cur]
            if len(cons) != 1:
                break
            j = cons[0]
            if (state[j] != PENDING or len(deps[j]) != 1 or not self.simple[j] or len(self.args[j]) != 1
                    or pin[j] not in (None, nd) or (avoid[j] and nd in avoid[j])):
                break
            cj = self.cost[j]
            if cj is not res and cj:
                merged = dict(res)
                for k, v in cj.items():
                    if v > merged.get(k, 0.0):
                        merged[k] = v
                if any(used.get(k, 0.0) + v > caps.get(k, 0.0) + 1e-9 for k, v in merged.items()):
                    break
                res = merged
            seg.append(j)
            cur = j
        return seg, res

    def _start(self, i: int, nd: str, batch: Optional[List[int]] = None) -> None:
        if batch:
            seg, res, chain = [i] + batch, self.cost[i], False
        else:
            seg, res = self._segment(i, nd)
            chain = True
        state = self.state
        for k in seg:
            state[k] = RUNNING
        self.running[nd] += 1
        self.total_running += 1
        used = self.used[nd]
        for k, v in res.items():
            used[k] = used.get(k, 0.0) + v
        self.touched.add(nd)
        tasks = []
        if chain:
            tasks.append(self._task(i))
            prev = i
            for k in seg[1:]:
                mod, name = self.target[k]
                tasks.append([k, mod, name, [["r", prev, nd]], self.extra[k], self.want[k], self.keep[k]])
                prev = k
        else:
            tasks = [self._task(k) for k in seg]
        fut = self.loop.create_future()
        _hornbeam.call_async(fut, "rpc_call", nd, _EXECUTOR, "run", [self.run_id, self.me, tasks, chain], None)
        fut.add_done_callback(lambda f: self._done(seg, res, nd, chain, f))

    def _task(self, i: int) -> list:
        if self.simple[i]:
            where = self.where
            spec = [["r", a, where[a]] for a in self.args[i]]
        else:
            spec = self._fill(self.args[i])
        mod, name = self.target[i]
        return [i, mod, name, spec, self.extra[i], self.want[i], self.keep[i]]

    def _release(self, res: Dict[str, float], nd: str) -> None:
        self.running[nd] -= 1
        self.total_running -= 1
        used = self.used[nd]
        for k, v in res.items():
            used[k] -= v

    def _done(self, seg: List[int], res: Dict[str, float], nd: str, chain: bool, f: asyncio.Future) -> None:
        if self.finished:
            if not f.cancelled():
                f.exception()  # retrieved: a late failure of an ended run is not news
            return
        try:
            self._settle(seg, res, nd, chain, f)
        except BaseException as e:  # a bug here must end the run, not hang it
            self._fail(seg[0], nd, e)

    def _settle(self, seg: List[int], res: Dict[str, float], nd: str, chain: bool, f: asyncio.Future) -> None:
        self._release(res, nd)
        exc = f.exception()
        if exc is not None:
            if isinstance(exc, NodeDown):
                self._node_lost(nd)
            if len(seg) > 1:
                self._require(seg[1:])
            self._retry(seg[0], nd, exc)
            if not self.finished:
                self._schedule()
            return
        recs = f.result()
        n = 0
        for k, rec in zip(seg, recs):
            if rec[0] != "ok":
                break
            if n and chain:
                # The node dropped the previous link once this one had it.
                prev = seg[n - 1]
                if self.where[prev] == nd:
                    self.where[prev] = None
                    self.held[nd].discard(prev)
            self._complete(k, nd, rec[1])
            ck = self.ckey[k]
            self.took[ck] = 0.8 * self.took.get(ck, rec[2]) + 0.2 * rec[2]
            n += 1
        if n < len(recs):
            k, rec = seg[n], recs[n]
            n += 1
            if rec[0] == "lost":
                _, d, holder, down = rec
                self.lost[k] += 1
                if self.lost[k] > MAX_LOST:
                    # Results that vanish from a live node again and again:
                    # a node of several worker processes, each with its own.
                    self._fail(k, nd, RuntimeError(
                        f"the input {self.ids[d]!r} of {self.ids[k]!r} went missing on {holder} {self.lost[k]} times; "
                        "a node started with -w N keeps results per worker process and cannot hold DAG results"))
                    return
                if down:
                    self._node_lost(holder)
                elif self.where[d] == holder:
                    self._results_lost([d], holder)
                self._require([k])
            elif rec[0] == "err":
                err = RemoteError(f"{rec[1]} raised on {nd}: {rec[2]}")
                err.type, err.message, err.traceback, err.node = rec[1], rec[2], rec[3], nd
                self._retry(k, nd, err)
            else:
                # The node ended the run (it took this node for gone): what it
                # held is lost, and it takes no more of this run's work.
                self._node_lost(nd, "ended this run (it took this node for gone)")
                self._require([k])
        if n < len(seg) and not self.finished:
            self._require(seg[n:])  # not run: their input is gone or failed
        self._schedule()

    def _complete(self, i: int, nd: str, value: Any) -> None:
        if self.keep[i] and nd in self.dead:
            # The node answered, then went down: what it held is gone.
            self._require([i])
            return
        self.state[i] = DONE
        self.done_count += 1
        if self.want[i]:
            self.results[self.ids[i]] = value
        if self.keep[i]:
            self.where[i] = nd
            self.held[nd].add(i)
        users = self.users
        for d in self.deps[i]:
            users[d] -= 1
            if users[d] == 0 and self.where[d] is not None:
                self._drop(d)
        state, remaining = self.state, self.remaining
        for j in self.consumers[i]:
            if state[j] == PENDING:
                remaining[j] -= 1
                if remaining[j] == 0:
                    self._ready(j)
        if self.done_count == self.n:
            self.finished = True
            self.fut.set_result(None)

    def _drop(self, d: int) -> None:
        nd = self.where[d]
        self.where[d] = None
        self.held[nd].discard(d)
        batch = self.drops[nd]
        batch.append(d)
        if len(batch) >= DROP_BATCH:
            self.drops[nd] = []
            try:
                hornbeam_erlang.rpc_cast(nd, _EXECUTOR, "drop", [self.run_id, batch])
            except Exception:
                pass  # the node is gone, and the results with it

    def _retry(self, i: int, nd: str, exc: BaseException) -> None:
        self.attempts[i] += 1
        if self.attempts[i] > self.limit[i]:
            return self._fail(i, nd, exc)
        if self.avoid[i] is None:
            self.avoid[i] = set()
        self.avoid[i].add(nd)
        self._require([i])

    def _fail(self, i: int, nd: Optional[str], exc: BaseException) -> None:
        self.finished = True
        if not self.fut.done():
            self.fut.set_exception(DAGFailed(self.ids[i], nd, exc, dict(self.results)))

    def _on_nodedown(self, nd: str) -> None:
        if self.finished:
            return
        self._node_lost(nd)
        self._schedule()

    def _node_lost(self, nd: str, why: str = "went down mid-run") -> None:
        if nd in self.dead or nd not in self.held:
            return
        self.dead.add(nd)
        lost = self.held.pop(nd)
        self.held[nd] = set()
        needed = sum(1 for i in lost if self.users[i] > 0)
        _log.warning("hornbeam_dag: %s %s: what it was running is retried elsewhere, "
                     "and the %d results it held that are still needed are recomputed", nd, why, needed)
        self._results_lost(list(lost), nd)

    def _results_lost(self, lost: List[int], nd: str) -> None:
        roots = []
        state, remaining = self.state, self.remaining
        for i in lost:
            self.where[i] = None
            self.held[nd].discard(i)
            if self.users[i] > 0:
                for j in self.consumers[i]:
                    if state[j] == PENDING or state[j] == READY:
                        remaining[j] += 1
                        state[j] = PENDING
                roots.append(i)
        if roots:
            self._require(roots)

    def _require(self, roots: List[int]) -> None:
        """(Re)compute ``roots``, and the results they need that are gone."""
        state, where, deps = self.state, self.where, self.deps
        recompute = set(roots)
        stack = list(roots)
        while stack:
            x = stack.pop()
            for d in deps[x]:
                if d not in recompute and state[d] == DONE and where[d] is None:
                    recompute.add(d)
                    stack.append(d)
        for x in recompute:
            if state[x] == DONE:
                self.done_count -= 1
                for d in deps[x]:
                    self.users[d] += 1
            state[x] = PENDING
        for x in recompute:
            remaining = 0
            for d in deps[x]:
                if state[d] != DONE or where[d] is None:
                    remaining += 1
            self.remaining[x] = remaining
            if remaining == 0:
                self._ready(x)


def validate_opts(timeout_ms: Optional[float]) -> None:
    if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float))
                                   or timeout_ms <= 0):
        raise ValueError("timeout_ms must be a positive number or None")


_node_loop: Optional[asyncio.AbstractEventLoop] = None
_live: Set[str] = set()  # runs this node drives now


def alive(run_ids: List[str]) -> List[bool]:
    """Which of ``run_ids`` this node still drives: asked by nodes holding
    results of runs that have not called them for a while."""
    return [r in _live for r in run_ids]


async def _capture_loop() -> None:
    global _node_loop
    _node_loop = asyncio.get_running_loop()


def node_loop() -> asyncio.AbstractEventLoop:
    """The node's own event loop (the one Go settles call_async futures on
    directly, in batches): the scheduler runs there, so each reply costs no
    extra thread wake-up."""
    if _node_loop is None:
        # A coroutine function called through rpc_call runs on the node's loop.
        hornbeam_erlang.rpc_call(hornbeam_erlang.node(), __name__, "_capture_loop", [], None)
    assert _node_loop is not None
    return _node_loop


def run_sync(dag: DAG, max_retries: int, allocation: str, outputs: Optional[Sequence[Hashable]],
             timeout_ms: Optional[float]) -> Dict[Hashable, Any]:
    validate_opts(timeout_ms)
    run = _Run(dag, max_retries, allocation, outputs)
    loop = node_loop()
    return asyncio.run_coroutine_threadsafe(run.run(timeout_ms), loop).result()


async def execute_distributed(dag: DAG, max_retries: int = 3, allocation: str = "load_balanced",
                              outputs: Optional[Sequence[Hashable]] = None,
                              timeout_ms: Optional[float] = None) -> Dict[Hashable, Any]:
    validate_opts(timeout_ms)
    run = _Run(dag, max_retries, allocation, outputs)
    if _node_loop is None:
        # Learning the node's loop waits on that loop, which may be this one.
        await asyncio.get_running_loop().run_in_executor(None, node_loop)
    loop = node_loop()
    if asyncio.get_running_loop() is loop:
        return await run.run(timeout_ms)
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run.run(timeout_ms), loop))
