"""hornbeam_dag on one node: building, validating and executing DAGs."""
import asyncio
import time

import pytest

import dagfns
import hornbeam_dag as hd
from hornbeam_dag import DAG, Function
from hornbeam_erlang import node


def chain():
    return (DAG()
            .add_function(Function("a", [], dagfns.one))
            .add_function(Function("b", ["a"], "dagfns:inc"))
            .add_function(Function("t", ["b"], ("dagfns", "Holder.triple")))
            .add_function(Function("c", ["a", "t"], dagfns.add, extra_args=[100])))


def test_execute_returns_every_regular_result_or_the_outputs():
    d = chain()
    d.validate()
    assert hd.execute(d) == {"a": 1, "b": 2, "t": 6, "c": 107}
    assert hd.execute(d, outputs=["c"]) == {"c": 107}


def test_add_function_chains_and_refuses_duplicates():
    d = DAG()
    assert d.add_function(Function("x", [], dagfns.one)) is d
    with pytest.raises(hd.DAGError, match="already"):
        d.add_function(Function("x", [], dagfns.one))


def test_missing_function_names_who_needs_it():
    d = DAG().add_function(Function("x", ["ghost"], dagfns.inc))
    with pytest.raises(hd.MissingFunction) as e:
        d.validate()
    assert isinstance(e.value, hd.DAGError) and isinstance(e.value, ValueError)
    assert (e.value.function_id, e.value.needed_by) == ("ghost", "x")


def test_cycle_is_named():
    d = DAG()
    d.add_function(Function("a", [], dagfns.one))
    d.add_function(Function("x", ["a", "z"], dagfns.add))
    d.add_function(Function("y", ["x"], dagfns.inc))
    d.add_function(Function("z", ["y"], dagfns.inc))
    with pytest.raises(hd.CyclicDependency) as e:
        d.validate()
    cyc = e.value.cycle
    assert cyc[0] == cyc[-1] and set(cyc) == {"x", "y", "z"}


def test_self_loop_is_a_cycle():
    with pytest.raises(hd.CyclicDependency):
        DAG().add_function(Function("x", ["x"], dagfns.inc)).validate()


@pytest.mark.parametrize("code, msg", [
    ("dagfns.one", "module:function"),
    (("dagfns",), "'module', 'function'"),
    ("dagfns:nope", "has no function 'nope'"),
    (lambda: 1, "not a module-level function"),
    (42, "must be"),
])
def test_bad_code_is_a_dag_error_at_validate(code, msg):
    with pytest.raises(hd.DAGError, match=msg):
        DAG().add_function(Function("x", [], code)).validate()


@pytest.mark.parametrize("cost", [{"cpu": -1}, {"cpu": "2"}, {"cpu": float("nan")}, {"": 1}])
def test_bad_cost_is_a_dag_error(cost):
    with pytest.raises(hd.DAGError, match="cost"):
        DAG().add_function(Function("x", [], dagfns.one, cost=cost)).validate()


def test_bad_arguments_to_function():
    with pytest.raises(TypeError):
        Function("x", "ab", dagfns.one)
    with pytest.raises(hd.DAGError):
        Function("x", [], dagfns.one, type="lazy")
    with pytest.raises(hd.DAGError):
        Function("x", [], dagfns.one, max_retries=-1)


def test_deep_chain_validates_without_recursion():
    d = DAG().add_function(Function(0, [], dagfns.one))
    for i in range(1, 20000):
        d.add_function(Function(i, [i - 1], dagfns.inc))
    assert hd.execute(d, outputs=[19999]) == {19999: 20000}


def test_inline_functions_run_inside_each_dependent():
    dagfns.calls.clear()
    d = DAG()
    d.add_function(Function("src", [], dagfns.one))
    d.add_function(Function("inl", ["src"], dagfns.record, type="inline", extra_args=[]))
    d.add_function(Function("u1", ["inl"], dagfns.inc))
    d.add_function(Function("u2", ["inl", "src"], dagfns.add))
    # record(tag): the inline function records src's result, 1.
    r = hd.execute(d)
    assert r == {"src": 1, "u1": 2, "u2": 2}
    assert dagfns.calls.count(1) == 2  # once per dependent
    with pytest.raises(hd.DAGError, match="inline"):
        hd.execute(d, outputs=["inl"])


def test_retries_then_dag_failed_with_completed_results():
    d = DAG().add_function(Function("a", [], dagfns.one)).add_function(Function("f", ["a"], dagfns.boom))
    with pytest.raises(hd.DAGFailed) as e:
        hd.execute(d, max_retries=2)
    assert e.value.function_id == "f" and e.value.node == node()
    assert isinstance(e.value.error, ValueError) and e.value.results == {"a": 1}
    state = []
    d = DAG().add_function(Function("f", [], dagfns.flaky, extra_args=[state], max_retries=2))
    assert hd.execute(d) == {"f": 3}


def test_unschedulable_on_this_node():
    with pytest.raises(hd.Unschedulable, match="tpu"):
        hd.execute(DAG().add_function(Function("x", [], dagfns.one, cost={"tpu": 1})))
    with pytest.raises(hd.Unschedulable, match="pinned"):
        hd.execute(DAG().add_function(Function("x", [], dagfns.one, node="elsewhere@host")))
    caps = hd.discover_nodes()[node()]
    fits = {"cpu": caps["cpu"], "memory": 1}
    assert hd.execute(DAG().add_function(Function("x", [], dagfns.one, cost=fits))) == {"x": 1}


def test_register_local_node_overrides_detected():
    before = hd.discover_nodes()[node()]
    assert {"cpu", "memory", "gpu"} <= set(before)
    try:
        now = hd.register_local_node({"gpu": 4, "fpga": 1})
        assert now["gpu"] == 4 and now["fpga"] == 1 and now["cpu"] == before["cpu"]
        assert hd.discover_nodes()[node()]["fpga"] == 1
        assert hd.execute(DAG().add_function(Function("x", [], dagfns.one, cost={"fpga": 1}))) == {"x": 1}
    finally:
        hd.register_local_node({"gpu": before["gpu"], "fpga": 0})
    with pytest.raises(ValueError):
        hd.register_local_node({"gpu": -1})


def test_execute_distributed_on_a_lone_node():
    # Without a cluster the node itself is the only one; calls go through the
    # same executor the cluster uses.
    d = chain()
    assert hd.execute_distributed(d) == {"a": 1, "b": 2, "t": 6, "c": 107}
    assert hd.execute_distributed(d, outputs=["c"], allocation="first_available") == {"c": 107}
    with pytest.raises(hd.DAGError, match="allocation"):
        hd.execute_distributed(d, allocation="random")
    with pytest.raises(hd.Unschedulable):
        hd.execute_distributed(DAG().add_function(Function("x", [], dagfns.one, cost={"tpu": 1})))
    d = DAG().add_function(Function("a", [], dagfns.one)).add_function(Function("f", ["a"], dagfns.boom))
    with pytest.raises(hd.DAGFailed) as e:
        hd.execute_distributed(d, max_retries=1, outputs=["a", "f"])
    assert e.value.function_id == "f" and e.value.error.type.endswith("ValueError")
    assert e.value.results == {"a": 1}


def test_aio_execute_distributed_and_the_sync_form_refuses_a_running_loop():
    async def main():
        r = await hd.aio.execute_distributed(chain(), outputs=["c"])
        with pytest.raises(RuntimeError, match="aio"):
            hd.execute_distributed(chain())
        return r
    assert asyncio.run(main()) == {"c": 107}


def test_timeout_is_dag_failed():
    d = DAG().add_function(Function("s", [], "time:sleep", extra_args=[2]))
    with pytest.raises(hd.DAGFailed) as e:
        hd.execute_distributed(d, timeout_ms=200)
    assert e.value.function_id is None and isinstance(e.value.error, TimeoutError)


def test_aio_form_on_the_nodes_own_loop():
    # A coroutine run by rpc_call to this node runs on the node's loop (as an
    # ASGI handler does): the awaitable form must not block it.
    import hornbeam_erlang
    from hornbeam_dag import _scheduler
    _scheduler._node_loop = None  # as in a fresh process
    assert hornbeam_erlang.rpc_call(node(), "dagfns", "on_node_loop", [], timeout_ms=10000) == {"c": 107}


def test_extra_args_that_cannot_travel_are_a_dag_error():
    d = DAG().add_function(Function("x", [], dagfns.add, extra_args=[object()]))
    with pytest.raises(hd.DAGError, match="extra_args"):
        hd.execute_distributed(d)
    with pytest.raises(hd.DAGFailed) as e:
        hd.execute(d)  # locally they need not travel: add() itself fails on an object
    assert isinstance(e.value.error, TypeError)


def test_slow_functions_without_cost_run_in_parallel():
    # Nothing reserves a cost, so only the node's threads (4 at least) bound
    # them: 48 sleeps of 0.25 s take 3 s on 4 threads. Were the ones beyond
    # the first 8 batched, 32 would run one after another: 8 s at least.
    d = DAG()
    for i in range(48):
        d.add_function(Function(i, [], "time:sleep", extra_args=[0.25]))
    t0 = time.monotonic()
    hd.execute_distributed(d)
    assert time.monotonic() - t0 < 7
