"""A pytest plugin for tests that need a cluster: real hornbeam nodes.

Enable it in a conftest.py (``pytest_plugins = ["hornbeam_dist.testing"]``)
or with ``-p hornbeam_dist.testing``, and run pytest inside a named node, so
that the test process is part of the cluster::

    hornbeam run --name test@127.0.0.1 -m pytest tests/

It provides:

- the ``hornbeam_cluster`` fixture: ``hornbeam_cluster(n=3, pythonpath=[...])``
  starts ``n`` nodes (``hornbeam start``) joined to this node's cluster, waits
  until they are up and returns their names; they are stopped when the test
  ends. Extra ``args`` go to each ``hornbeam start``.
- the ``distributed`` marker: tests marked ``@pytest.mark.distributed`` are
  skipped when pytest runs in a node without a name (``nonode@nohost``), as
  Elixir's ``@tag :distributed`` tests are excluded when the node is not
  alive. Select them with ``-m distributed``, leave them out with
  ``-m "not distributed"``.

The nodes use the cookie of ``HORNBEAM_COOKIE`` or ``~/.hornbeam.cookie``, as
``hornbeam`` does: when the test node was given ``--cookie``, set
``HORNBEAM_COOKIE`` to the same value instead. The executable is
``HORNBEAM_BIN``, else the running hornbeam.
"""

import os
import secrets
import signal
import subprocess
import time
from typing import Callable, Iterator, List, Optional, Sequence

import pytest

import hornbeam_erlang as he


def _alive() -> bool:
    return he.node() != "nonode@nohost"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "distributed: needs a cluster; skipped unless pytest runs in a named hornbeam node")


def pytest_collection_modifyitems(config, items) -> None:
    if _alive():
        return
    skip = pytest.mark.skip(reason="distributed test: run pytest under `hornbeam run --name NAME@HOST -m pytest`")
    for item in items:
        if "distributed" in item.keywords:
            item.add_marker(skip)


def _binary() -> str:
    b = os.environ.get("HORNBEAM_BIN")
    if b:
        return b
    return os.path.realpath("/proc/self/exe")


class _Cluster:
    def __init__(self) -> None:
        self.procs: List[subprocess.Popen] = []

    def start(self, n: int = 3, pythonpath: Optional[Sequence[str]] = None, args: Sequence[str] = (),
              timeout: float = 30.0) -> List[str]:
        if not _alive():
            pytest.skip("hornbeam_cluster needs a named node: run pytest under `hornbeam run --name NAME@HOST`")
        info = he.node_info(he.node())
        seed = info.get("cluster_addr")
        if not seed:
            pytest.skip("hornbeam_cluster: this node has no cluster listener to join")
        if isinstance(pythonpath, str):
            pythonpath = [pythonpath]
        tag = secrets.token_hex(3)
        names = [f"t{i}-{tag}@127.0.0.1" for i in range(n)]
        for name in names:
            cmd = [_binary(), "start", "--name", name, "--join", seed, "--cluster-host", "127.0.0.1"]
            for p in pythonpath or ():
                cmd += ["--pythonpath", os.path.abspath(p)]
            cmd += list(args)
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                               start_new_session=True))
        deadline = time.monotonic() + timeout
        while set(names) - set(he.nodes("connected")):
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                err = dead[0].stderr.read().decode(errors="replace") if dead[0].stderr else ""
                raise RuntimeError(f"hornbeam_cluster: a node exited with {dead[0].returncode}:\n{err[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"hornbeam_cluster: nodes not up within {timeout}s: "
                                   f"{sorted(set(names) - set(he.nodes('connected')))}")
            time.sleep(0.02)
        return names

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stderr:
                p.stderr.close()
        self.procs.clear()


@pytest.fixture
def hornbeam_cluster() -> Iterator[Callable[..., List[str]]]:
    """``hornbeam_cluster(n=3, pythonpath=None, args=())`` starts n real nodes
    joined to this one and returns their names; they stop with the test."""
    c = _Cluster()
    try:
        yield c.start
    finally:
        c.stop()


__all__ = ["hornbeam_cluster"]
