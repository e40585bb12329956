"""Module-level functions for test_dag.py (DAG code is resolved by name)."""

calls = []


def one():
    return 1


def inc(x):
    return x + 1


def add(*xs):
    return sum(xs)


def record(tag, *args):
    calls.append(tag)
    return tag


def flaky(state):
    """Fails the first two times it is called for a given list."""
    state.append(1)
    if len(state) < 3:
        raise RuntimeError("not yet")
    return len(state)


def boom(*args):
    raise ValueError("boom")


class Holder:
    @staticmethod
    def triple(x):
        return 3 * x


async def on_node_loop():
    import hornbeam_dag as hd
    from hornbeam_dag import DAG, Function
    d = (DAG()
         .add_function(Function("a", [], one))
         .add_function(Function("b", ["a"], inc))
         .add_function(Function("t", ["b"], ("dagfns", "Holder.triple")))
         .add_function(Function("c", ["a", "t"], add, extra_args=[100])))
    return await hd.aio.execute_distributed(d, outputs=["c"])
