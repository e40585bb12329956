"""An ASGI request's receive and send, as an app sees them: the messages
answered in C behave as the coroutines that answer the others."""
import asyncio
import gc

import pytest

from _hornbeam_web.asgi import _HTTPCycle

START = {"type": "http.response.start", "status": 200, "headers": [(b"a", b"1")]}


def run(coro):
    return asyncio.run(coro)


def test_first_receive_is_the_body_read_ahead():
    async def go():
        c = _HTTPCycle(7, b"abc", False)
        first = await c.receive()
        c.done = True  # the response ended: the next receive is the disconnect
        return first, await c.receive(), c.head

    first, then, head = run(go())
    assert first == {"type": "http.request", "body": b"abc", "more_body": False}
    assert then == {"type": "http.disconnect"}
    assert head is None


def test_start_and_final_body_are_kept():
    async def go():
        c = _HTTPCycle(1, b"", False)
        headers = [(b"content-type", b"text/plain")]
        assert await c.send({"type": "http.response.start", "status": 201, "headers": headers}) is None
        headers.append((b"x", b"y"))  # the app reuses its list
        assert await c.send({"type": "http.response.body", "body": b"hi"}) is None
        return c

    c = run(go())
    assert c.start == (201, [(b"content-type", b"text/plain")])
    assert c.final == b"hi" and c.done and not c.sent


@pytest.mark.parametrize(
    "msg,want",
    [
        ({"type": "http.response.start", "status": "204"}, (204, [])),  # int() of the status, as uvicorn
        ({"type": "http.response.start", "status": 200, "headers": ((b"a", b"1"),)}, (200, [(b"a", b"1")])),
    ],
)
def test_start_forms(msg, want):
    async def go():
        c = _HTTPCycle(1, b"", False)
        await c.send(msg)
        return c.start

    assert run(go()) == want


def test_body_forms():
    async def go():
        out = []
        for body in (bytearray(b"ab"), memoryview(b"cd"), None):
            c = _HTTPCycle(1, b"", False)
            await c.send(START)
            msg = {"type": "http.response.body"}
            if body is not None:
                msg["body"] = body
            await c.send(msg)
            out.append(c.final)
        return out

    assert run(go()) == [b"ab", b"cd", b""]


@pytest.mark.parametrize(
    "msgs,err",
    [
        ([{"type": "http.response.body", "body": b"x"}], "before http.response.start"),
        ([START, START], "sent twice"),
        ([START, {"type": "http.response.body"}, {"type": "http.response.body"}], "after the response ended"),
        ([{"type": "http.nonsense"}], "unexpected ASGI message type"),
    ],
)
def test_errors_are_raised_at_the_await(msgs, err):
    async def go():
        c = _HTTPCycle(1, b"", False)
        for m in msgs[:-1]:
            await c.send(m)
        aw = c.send(msgs[-1])  # a coroutine raises when awaited, not when called
        with pytest.raises(RuntimeError, match=err):
            await aw

    run(go())


def test_a_send_is_a_coroutine_to_asyncio():
    async def go():
        c = _HTTPCycle(1, b"", False)
        aw = c.send(START)
        assert asyncio.iscoroutine(aw)
        await asyncio.create_task(aw)  # as with an `async def send`
        msg = await asyncio.ensure_future(c.receive())
        return c.start, msg

    start, msg = run(go())
    assert start == (200, [(b"a", b"1")])
    assert msg["body"] == b""


def test_an_awaitable_is_awaited_once():
    async def go():
        c = _HTTPCycle(1, b"", False)
        aw = c.send(START)
        await aw
        with pytest.raises(RuntimeError, match="cannot reuse"):
            await aw

    run(go())


def test_throw_and_close():
    c = _HTTPCycle(1, b"body", False)
    aw = c.receive()
    with pytest.raises(ValueError):
        aw.throw(ValueError("no"))
    aw = c.send(START)
    aw.close()
    with pytest.raises(RuntimeError, match="cannot reuse"):
        aw.send(None)
    with pytest.raises(StopIteration) as stop:
        _HTTPCycle(1, b"x", True).receive().send(None)
    assert stop.value.value == {"type": "http.request", "body": b"x", "more_body": True}


def test_a_cycle_in_a_reference_cycle_is_collected():
    class Probe:
        pass

    import weakref

    c = _HTTPCycle(1, b"", False)
    p = Probe()
    c.body_out, p.cycle = p, c  # cycle -> probe -> cycle
    alive = weakref.ref(p)
    del c, p
    gc.collect()
    assert alive() is None


class _Collides:
    """A key that looks, by hash, like the string `like`: a dict lookup of
    `like` runs its __eq__, which runs `then`."""

    def __init__(self, like, then):
        self.like, self.then = like, then

    def __hash__(self):
        return hash(self.like)

    def __eq__(self, other):
        self.then()
        return False


def test_a_message_changed_while_it_is_read():
    async def go():
        c = _HTTPCycle(1, b"", False)
        msg = {"type": "http.response.start", "status": 207}
        msg[_Collides("headers", lambda: msg.pop("status", None))] = 1
        await c.send(msg)  # status was taken before the headers were looked up
        return c.start

    assert run(go()) == (207, [])


def test_an_error_while_a_message_is_read_is_raised():
    def boom():
        raise ZeroDivisionError

    async def go():
        c = _HTTPCycle(1, b"", False)
        await c.send(START)
        msg = {"type": "http.response.body", "body": b"x", _Collides("more_body", boom): 1}
        with pytest.raises(ZeroDivisionError):
            await c.send(msg)

    run(go())


class _Out:
    """A streamed body's stand-in: records the pieces put, and answers as
    _Body.put does (None, or an awaitable to wait on)."""

    def __init__(self, answer=None):
        self.pieces, self.answer = [], answer

    def put(self, data):
        self.pieces.append(data)
        return self.answer


def test_a_streamed_piece_goes_to_put_from_send():
    async def go():
        c = _HTTPCycle(1, b"", False)
        await c.send(START)
        c.sent, c.body_out = True, _Out()  # the head went to Go
        assert await c.send({"type": "http.response.body", "body": b"one", "more_body": True}) is None
        waited = []

        async def wait():
            waited.append(True)

        c.body_out.answer = wait()  # back pressure: send hands back put's wait
        aw = c.send({"type": "http.response.body", "body": b"two", "more_body": True})
        assert not waited
        await aw
        return c.body_out.pieces, waited

    assert run(go()) == ([b"one", b"two"], [True])


def test_an_error_of_a_streamed_piece_is_raised_at_the_await():
    async def go():
        c = _HTTPCycle(1, b"", False)
        await c.send(START)

        async def failing():
            raise ConnectionResetError("gone")

        c.sent, c.body_out = True, _Out(failing())
        aw = c.send({"type": "http.response.body", "body": b"x", "more_body": True})
        with pytest.raises(ConnectionResetError):
            await aw

    run(go())
