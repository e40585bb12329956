"""Routing a request to the node that owns its key: tables (as Elixir's
KV.Router) and consistent hashing."""

import bisect
import hashlib
import importlib
import inspect
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import _hornbeam

from hornbeam_erlang import node as this_node
from hornbeam_erlang import nodes, rpc_call
from hornbeam_erlang.errors import RemoteError

Matcher = Union[str, range, Callable[[Any], bool]]


class NoRoute(LookupError):
    """No table entry matches the key."""


_routers: Dict[str, "Router"] = {}
_lock = threading.Lock()


def _first(key: Any) -> int:
    if isinstance(key, str) and key:
        return ord(key[0])
    if isinstance(key, (bytes, bytearray)) and key:
        return key[0]
    return -1


def _matcher(m: Matcher) -> Callable[[Any], bool]:
    if isinstance(m, str):
        lo, sep, hi = m.partition("-")
        if len(m) == 1:
            lo, hi = m, m
        elif not sep or len(lo) != 1 or len(hi) != 1:
            raise ValueError(f"Router: matcher {m!r} is not a first-character range like 'a-m'")
        a, b = ord(lo), ord(hi)
        return lambda key: a <= _first(key) <= b
    if isinstance(m, range):
        return lambda key: _first(key) in m
    if callable(m):
        return m
    raise TypeError(f"Router: a matcher is a range string 'a-m', a range of code points or a callable, not {m!r}")


def _run_here(module: str, function: str, args: Sequence[Any], timeout_ms: Optional[float]) -> Any:
    fn = getattr(importlib.import_module(module), function)
    if inspect.iscoroutinefunction(fn):
        return rpc_call(this_node(), module, function, list(args), timeout_ms)
    return fn(*args)


class Router:
    """A routing table, as Elixir's KV.Router: ``table`` is a list of
    ``(matcher, node)``; a matcher is a first-character range ``"a-m"``, a
    ``range`` of code points (``range(ord('a'), ord('m') + 1)``) or a callable
    ``key -> bool``. Entries are tried in order.

    ``route`` runs the request here when the matching entry is this node, and
    otherwise forwards it to that node, which routes it again with its own
    router of the same ``name`` (each node may hold a different table).
    """

    def __init__(self, table: Sequence[Tuple[Matcher, str]], name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("Router: name must be a non-empty str")
        entries = []
        for entry in table:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not isinstance(entry[1], str):
                raise TypeError(f"Router: a table entry is (matcher, node), not {entry!r}")
            entries.append((_matcher(entry[0]), entry[1]))
        self.table = list(table)
        self.name = name
        self._entries = entries
        with _lock:
            _routers[name] = self

    def lookup(self, key: Any) -> str:
        """The node that owns ``key``; NoRoute if no entry matches."""
        for match, n in self._entries:
            if match(key):
                return n
        raise NoRoute(f"could not find entry for {key!r} in table {self.table!r}")

    def route(self, key: Any, module: str, function: str, args: Sequence[Any] = (),
              timeout_ms: Optional[float] = 5000) -> Any:
        """Run ``module.function(*args)`` on the node that owns ``key``."""
        target = self.lookup(key)
        if target == this_node():
            return _run_here(module, function, args, timeout_ms)
        try:
            return rpc_call(target, "hornbeam_dist._router", "_route",
                            [self.name, key, module, function, list(args), timeout_ms], timeout_ms)
        except RemoteError as e:
            if e.type.endswith("NoRoute"):
                raise NoRoute(e.message) from None
            raise

    def __repr__(self) -> str:
        return f"Router({self.table!r}, {self.name!r})"


def _route(name: str, key: Any, module: str, function: str, args: list, timeout_ms: Optional[float]) -> Any:
    """A forwarded request: route it again with this node's router of that name."""
    # Another node asks this one to run module.function: --allow-module holds
    # as for an rpc_call of it.
    _hornbeam.call("module_allowed", module)
    with _lock:
        r = _routers.get(name)
    if r is None:
        raise NoRoute(f"no router named {name!r} on {this_node()}")
    return r.route(key, module, function, args, timeout_ms)


class HashRouter:
    """Consistent hashing of keys over nodes: the fixed ``nodes``, or the live
    nodes (this one included) that announced ``role``, or all live visible
    nodes. When a node joins or leaves, only about 1/N of the keys move.
    """

    POINTS = 160  # virtual points per node: spreads keys evenly

    def __init__(self, name: str, nodes: Optional[Sequence[str]] = None, role: Optional[str] = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("HashRouter: name must be a non-empty str")
        self.name = name
        self.role = role
        self._fixed = None if nodes is None else sorted(set(nodes))
        self._ring: Tuple[Tuple[str, ...], List[int], List[str]] = ((), [], [])

    def nodes(self) -> List[str]:
        """The nodes keys are spread over now."""
        if self._fixed is not None:
            return list(self._fixed)
        if self.role is None:
            return sorted(set(nodes()) | {this_node()})
        out = [m["name"] for m in _hornbeam.call("members") if self.role in (m.get("roles") or [])]
        me = this_node()
        if self.role in (_hornbeam.call("node_info", me).get("roles") or []):
            out.append(me)
        return sorted(set(out))

    @staticmethod
    def _hash(s: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(s, digest_size=8).digest(), "big")

    def _points(self) -> Tuple[List[int], List[str]]:
        ns = tuple(self.nodes())
        if ns != self._ring[0]:
            pts = sorted((self._hash(f"{n}#{i}".encode()), n) for n in ns for i in range(self.POINTS))
            self._ring = (ns, [p for p, _ in pts], [n for _, n in pts])
        return self._ring[1], self._ring[2]

    def lookup(self, key: Any) -> str:
        """The node that owns ``key`` (str, bytes or int); NoRoute when there is none."""
        hashes, owners = self._points()
        if not hashes:
            raise NoRoute(f"could not find entry for {key!r}: hash router {self.name!r} has no nodes")
        if isinstance(key, str):
            b = key.encode()
        elif isinstance(key, (bytes, bytearray)):
            b = bytes(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            b = str(key).encode()
        else:
            raise TypeError(f"HashRouter: key must be str, bytes or int, not {type(key).__name__}")
        i = bisect.bisect(hashes, self._hash(b)) % len(hashes)
        return owners[i]

    def route(self, key: Any, module: str, function: str, args: Sequence[Any] = (),
              timeout_ms: Optional[float] = 5000) -> Any:
        """Run ``module.function(*args)`` on the node that owns ``key``."""
        target = self.lookup(key)
        if target == this_node():
            return _run_here(module, function, args, timeout_ms)
        return rpc_call(target, module, function, list(args), timeout_ms)

    def __repr__(self) -> str:
        return f"HashRouter({self.name!r}, nodes={self._fixed!r}, role={self.role!r})"


__all__ = ["Router", "HashRouter", "NoRoute"]
