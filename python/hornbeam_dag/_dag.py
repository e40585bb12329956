"""Functions, DAGs, and the errors their validation raises."""

import importlib
import importlib.util
import math
from typing import Any, Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

Code = Union[Tuple[str, str], List[str], str, Callable[..., Any]]


class DAGError(ValueError):
    """The DAG cannot run as given (a missing function, a cycle, bad code or cost)."""


class MissingFunction(DAGError):
    """A function names an argument that is not in the DAG.

    Attributes: ``function_id`` (the missing id) and ``needed_by`` (the function naming it).
    """

    def __init__(self, function_id: Hashable, needed_by: Hashable) -> None:
        super().__init__(f"function {function_id!r} is not in the DAG (an argument of {needed_by!r})")
        self.function_id = function_id
        self.needed_by = needed_by


class CyclicDependency(DAGError):
    """The functions depend on each other in a cycle; ``cycle`` lists it, first id repeated last."""

    def __init__(self, cycle: List[Hashable]) -> None:
        super().__init__("cyclic dependency: " + " -> ".join(repr(c) for c in cycle))
        self.cycle = cycle


class Unschedulable(DAGError):
    """No node can ever run a function: its cost exceeds every candidate node's
    capabilities, names a resource no node declares, or it is pinned to a node
    that is not there. Raised before anything runs.

    Attributes: ``function_id``, ``cost``, ``node`` (the pin, or None).
    """

    def __init__(self, function_id: Hashable, cost: Mapping[str, float], node: Optional[str], why: str) -> None:
        super().__init__(f"function {function_id!r} cannot run on any node: {why}")
        self.function_id = function_id
        self.cost = dict(cost)
        self.node = node


class DAGFailed(RuntimeError):
    """A function failed once its retries were spent (or the run timed out).

    Attributes: ``function_id`` (None for a timeout), ``node`` (where it last
    ran), ``error`` (the exception: a ``hornbeam_erlang.RemoteError`` carrying the
    remote type, message and traceback, ``NodeDown``, ``TimeoutError``...) and
    ``results`` (``{id: result}`` of the requested outputs that did complete).
    """

    def __init__(self, function_id: Optional[Hashable], node: Optional[str], error: BaseException,
                 results: Dict[Hashable, Any]) -> None:
        what = "the DAG" if function_id is None else f"function {function_id!r}"
        where = f" on {node}" if node else ""
        super().__init__(f"{what} failed{where}: {type(error).__name__}: {error}")
        self.function_id = function_id
        self.node = node
        self.error = error
        self.results = results


_TYPES = ("regular", "inline")


class Function:
    """One function of a DAG.

    ``args`` are ids of other functions, whose results are passed in order;
    ``extra_args`` are appended after them. ``code`` is ``("module", "function")``,
    ``"module:function"`` or a module-level callable (resolved by name on the node
    that runs it). ``cost`` is a dict of resource amounts (``cpu``, ``memory`` in
    MB, ``gpu``, or any key a node declares); ``node`` pins the function to a node;
    ``max_retries`` overrides the run's; ``type="inline"`` evaluates the function
    inside each dependent instead of scheduling it.
    """

    __slots__ = ("id", "args", "code", "cost", "extra_args", "node", "max_retries", "type")

    def __init__(self, id: Hashable, args: Sequence[Hashable], code: Code,
                 cost: Optional[Mapping[str, float]] = None, extra_args: Sequence[Any] = (),
                 node: Optional[str] = None, max_retries: Optional[int] = None,
                 type: str = "regular") -> None:
        if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
            raise TypeError(f"Function {id!r}: args must be a list of function ids")
        if not isinstance(extra_args, (list, tuple)):
            raise TypeError(f"Function {id!r}: extra_args must be a list or tuple")
        if cost is not None and not isinstance(cost, Mapping):
            raise TypeError(f"Function {id!r}: cost must be a dict of resource amounts")
        if node is not None and not isinstance(node, str):
            raise TypeError(f"Function {id!r}: node must be a node name")
        if max_retries is not None and (isinstance(max_retries, bool) or not isinstance(max_retries, int)
                                        or max_retries < 0):
            raise DAGError(f"Function {id!r}: max_retries must be an int >= 0")
        if type not in _TYPES:
            raise DAGError(f"Function {id!r}: type must be 'regular' or 'inline', not {type!r}")
        self.id = id
        self.args = list(args)
        self.code = code
        self.cost = dict(cost or {})
        self.extra_args = list(extra_args)
        self.node = node
        self.max_retries = max_retries
        self.type = type

    def __repr__(self) -> str:
        return f"Function(id={self.id!r}, args={self.args!r}, code={self.code!r}, cost={self.cost!r})"


def code_target(fid: Hashable, code: Code) -> Tuple[str, str]:
    """``(module, qualified name)`` for a function's code, or DAGError."""
    if isinstance(code, str):
        mod, sep, name = code.partition(":")
        if not sep or not mod or not name:
            raise DAGError(f"function {fid!r}: code {code!r} must be 'module:function'")
        return mod, name
    if isinstance(code, (tuple, list)):
        if len(code) != 2 or not all(isinstance(c, str) and c for c in code):
            raise DAGError(f"function {fid!r}: code {code!r} must be ('module', 'function')")
        return code[0], code[1]
    if callable(code):
        mod = getattr(code, "__module__", None)
        name = getattr(code, "__qualname__", None)
        if not isinstance(mod, str) or not isinstance(name, str) or "<" in name:
            raise DAGError(f"function {fid!r}: {code!r} is not a module-level function; "
                           "other nodes resolve code by module and name")
        return mod, name
    raise DAGError(f"function {fid!r}: code must be ('module', 'function'), 'module:function' "
                   f"or a callable, not {type(code).__name__}")


def resolve(module: str, name: str) -> Callable[..., Any]:
    """Import ``module`` and follow the dotted ``name`` in it."""
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{module}:{name} is not callable")
    return obj


def _check_code(fid: Hashable, code: Code) -> None:
    mod, name = code_target(fid, code)
    if callable(code) and not isinstance(code, (str, tuple, list)):
        return
    # Where the module is importable here, a missing function is known now;
    # a module only the other nodes have is checked when the function runs.
    try:
        if importlib.util.find_spec(mod) is None:
            return
        resolve(mod, name)
    except (ImportError, ValueError):
        return
    except AttributeError:
        raise DAGError(f"function {fid!r}: module {mod!r} has no function {name!r}") from None
    except TypeError as e:
        raise DAGError(f"function {fid!r}: {e}") from None


def _check_cost(fid: Hashable, cost: Mapping[str, float]) -> None:
    for k, v in cost.items():
        if not isinstance(k, str) or not k:
            raise DAGError(f"function {fid!r}: cost keys must be resource names, not {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise DAGError(f"function {fid!r}: cost {k}={v!r} must be a number >= 0")


class DAG:
    """A set of functions by id. Build it with ``add_function`` and check it
    with ``validate`` (``execute`` and ``execute_distributed`` validate too)."""

    def __init__(self) -> None:
        self.functions: Dict[Hashable, Function] = {}
        self._order: Optional[List[Hashable]] = None

    def add_function(self, fn: Function) -> "DAG":
        """Add ``fn``; returns the DAG, for chaining. A duplicate id is a DAGError."""
        if not isinstance(fn, Function):
            raise TypeError(f"add_function takes a Function, not {type(fn).__name__}")
        try:
            hash(fn.id)
        except TypeError:
            raise DAGError(f"function id {fn.id!r} is not hashable") from None
        if fn.id in self.functions:
            raise DAGError(f"function {fn.id!r} is already in the DAG")
        self.functions[fn.id] = fn
        self._order = None
        return self

    def __len__(self) -> int:
        return len(self.functions)

    def __contains__(self, fid: Hashable) -> bool:
        return fid in self.functions

    def validate(self) -> None:
        """Raise MissingFunction, CyclicDependency or DAGError (bad code or cost)
        if the DAG cannot run; return None if it can."""
        self.order()

    def order(self) -> List[Hashable]:
        """The ids in an order where every function comes after its arguments."""
        if self._order is not None:
            return self._order
        fns = self.functions
        for fid, fn in fns.items():
            for a in fn.args:
                try:
                    present = a in fns
                except TypeError:
                    present = False
                if not present:
                    raise MissingFunction(a, fid)
            _check_cost(fid, fn.cost)
            _check_code(fid, fn.code)
        # Iterative depth-first search: 10,000-long chains must not recurse.
        WHITE, GREY, BLACK = 0, 1, 2
        colour: Dict[Hashable, int] = dict.fromkeys(fns, WHITE)
        order: List[Hashable] = []
        for root in fns:
            if colour[root] != WHITE:
                continue
            colour[root] = GREY
            stack: List[Tuple[Hashable, Iterable[Hashable]]] = [(root, iter(fns[root].args))]
            path = [root]
            while stack:
                fid, it = stack[-1]
                for a in it:
                    c = colour[a]
                    if c == WHITE:
                        colour[a] = GREY
                        stack.append((a, iter(fns[a].args)))
                        path.append(a)
                        break
                    if c == GREY:
                        cyc = path[path.index(a):] + [a]
                        cyc.reverse()
                        raise CyclicDependency(cyc)
                else:
                    stack.pop()
                    path.pop()
                    colour[fid] = BLACK
                    order.append(fid)
        self._order = order
        return order
