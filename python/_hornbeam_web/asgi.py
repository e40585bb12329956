"""ASGI 3 for the host: each request is a task on the node's event loop.

The host calls ``handle(req, app_spec, scope)`` (a coroutine, so it runs on the
loop). ``receive`` and ``send`` reach Go through awaitable calls that never
block the loop. A response that is one ``http.response.start`` and one final
``http.response.body`` comes back whole in handle's return value; anything else
streams through Go as the app sends it.
"""

import asyncio

import _hornbeam

from . import ClientDisconnected, _apps, load as _load

_lifespan_state = {}


def load(spec):
    """Import ``module:attribute`` (attribute defaults to ``app``)."""
    return _load(spec, "app")


async def _go(name, *args):
    fut = asyncio.get_running_loop().create_future()
    _hornbeam.call_async(fut, name, *args)
    return await fut


async def _raising(error):
    raise error


async def _quietly(call):
    """Wait for a call to Go whose error its done-callback keeps."""
    try:
        await call
    except Exception:
        pass


class _GoCall(asyncio.Future):
    """The future of a call to Go that, once made, runs to its end: it
    cannot be cancelled, so a task cancelled while awaiting it is cancelled
    when the call is over (as a transport's write is not undone), and what
    is in flight is always known."""

    def cancel(self, msg=None):
        return False


class _Body:
    """A streamed response body on its way to the client.

    ``put`` sends a piece without waiting once its bytes are written (on a
    socket Go lent to this thread) or queued, as a transport's write does
    under uvicorn; what is queued while a call to Go is in flight goes out
    with the next one, so an app that sends many small pieces at once (a CSV
    export) costs a few calls, not one each. At most ``HIGH`` bytes wait:
    past that, the sender waits until they are out (back pressure). One
    write is in flight at a time, so sends from several tasks at once go out
    whole, each task's in its order.
    """

    HIGH = 1 << 16
    # The largest piece written from this thread (directwrite.c): a full
    # socket leaves the rest of it to be copied, so larger ones go to Go,
    # which writes them from the app's bytes.
    DIRECT_MAX = 1 << 20

    def __init__(self, req):
        self.req = req
        # The pieces queued, kept as the app sent them (bytes, which cannot
        # change) and joined only when there are several: a piece sent alone
        # goes to Go without a copy.
        self.parts = []
        self.size = 0
        # What is in flight: a call made at once (the response's head, a
        # large piece) or the task draining the queue.
        self.task = None
        self.error = None
        # The client's socket, once Go lends it to this thread (the handle
        # an http_write returns): a piece sent while nothing is queued or in
        # flight is written at once, as uvicorn's transport writes it.
        self.direct = 0

    def _idle(self):
        return self.task is None or self.task.done()

    def carry(self, call, *args):
        """Make the call to Go now and return its future. When it ends, the
        queue is drained unless another task already took over; its error is
        kept, for the next ``put``."""
        fut = _GoCall()
        _hornbeam.call_async(fut, call, self.req, *args)
        self.task = fut
        fut.add_done_callback(self._carried)
        return fut

    def _carried(self, fut):
        e = fut.exception()
        if e is not None and self.error is None:  # the client left: the app learns it on its next send
            self.error = e
        elif e is None:
            self._lent(fut.result())
        if self.task is not fut:  # a drain took over meanwhile
            return
        if self.error is not None:
            self.parts, self.size = [], 0
        elif self.parts:
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self):
        try:
            while self.parts:
                parts = self.parts
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                self.parts, self.size = [], 0
                self._lent(await _go("http_write", self.req, data))
        except Exception as e:  # the client left: the app learns it on its next send
            self.error = e
            self.parts, self.size = [], 0

    def _lent(self, handle):
        if handle:
            self.direct = handle

    def put(self, data: bytes):
        """Send ``data``: None once it is on its way, or an awaitable to wait
        on (back pressure, or a call to Go that must end first). Most pieces
        need no wait, and then cost no coroutine. An error is raised at the
        await, as a send's is."""
        if self.error is not None:
            return _raising(self.error)
        if self._idle() and not self.parts:
            if self.direct and len(data) <= self.DIRECT_MAX:
                done = _hornbeam.http_direct(self.direct, data)
                if done == 1:  # on the wire
                    return None
                if done == 2:
                    # Taken, but the socket was full: Go writes the rest of
                    # its frame as the client reads (an empty write), and the
                    # sender waits for that, as for a large piece below.
                    return _quietly(self.carry("http_write", b""))
            if len(data) >= self.HIGH:
                # A piece this large waits until it is out either way: with
                # nothing queued or in flight it goes at once, without a
                # task to carry it (two turns of the loop fewer per piece).
                return _quietly(self.carry("http_write", data))
        self.parts.append(data)
        self.size += len(data)
        if self._idle():
            self.task = asyncio.get_running_loop().create_task(self._drain())
        if self.size >= self.HIGH:
            return self._settle(self.HIGH)
        return None

    async def _settle(self, limit):
        """Wait while ``limit`` bytes or more are queued and something is in
        flight (with 0, until nothing is): for the call, then for the drain
        that follows it. Shielded: a task cancelled here leaves the others'
        bytes on their way."""
        while self.size >= limit and not self._idle():
            try:
                await asyncio.shield(self.task)
            except Exception:  # kept in self.error
                pass

    async def close(self):
        await self._settle(0)
        if self.error is not None:
            raise self.error


class _WSOut:
    """Messages on their way to a websocket client, as ``_Body`` for bytes:
    ``send`` returns once the message is queued; what is queued while a call
    to Go is in flight goes out, in order, with the next one. At most ``HIGH``
    bytes wait, then ``send`` waits (back pressure)."""

    HIGH = 1 << 16

    def __init__(self, req):
        self.req = req
        self.msgs = []
        self.size = 0
        self.task = None
        self.error = None

    async def _drain(self):
        try:
            while self.msgs:
                batch, self.msgs, self.size = self.msgs, [], 0
                await _go("ws_send_many", self.req, batch)
        except Exception as e:  # the connection is gone: the app learns it on its next send
            self.error = e
            self.msgs, self.size = [], 0

    async def send(self, text, data):
        if self.error is not None:
            raise self.error
        self.msgs.append([text, data])
        self.size += len(text) if text is not None else len(data)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._drain())
        if self.size >= self.HIGH:
            # Shielded: a send cancelled while it waits (a timeout) leaves
            # the drain, and every message queued, on their way.
            await asyncio.shield(self.task)

    async def flush(self):
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)
        if self.error is not None:
            raise self.error


class _HTTPCycle(_hornbeam.HTTPCycle):
    """One request's ``receive`` and ``send``, as bound methods: ``head`` is
    the body the host read ahead (all of it unless ``more``). A response that
    is one ``http.response.start`` and one final ``http.response.body`` is
    kept here (``start``, ``final``) and returned whole by ``handle``;
    anything else streams through Go (``body_out``) as the app sends it.

    The base class, in C, answers the common messages without a coroutine:
    the first ``receive`` and that start and final body. It hands every other
    message to ``_receive_slow`` and ``_send_slow``."""

    __slots__ = ()

    async def _receive_slow(self):
        # The first message, the body read ahead, came from the base class:
        # http.request even for a request without a body (b"", more_body
        # False), as apps such as Django read it first.
        if self.more:
            try:
                chunk, self.more = await _go("http_read", self.req, 65536)
            except ClientDisconnected:  # the client left before the body's end
                self.more = False
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": self.more}
        if self.done:
            return {"type": "http.disconnect"}
        await _go("http_wait_disconnect", self.req)
        return {"type": "http.disconnect"}

    async def _send_slow(self, message):
        t = message["type"]
        if t == "http.response.start":
            if self.start is not None:
                raise RuntimeError("http.response.start sent twice")
            # Pairs of bytes, as they go on the wire; copied, as the app may
            # reuse its list.
            self.start = (int(message["status"]), list(message.get("headers", ())))
        elif t == "http.response.body":
            if self.start is None:
                raise RuntimeError("http.response.body before http.response.start")
            if self.done:
                raise RuntimeError("http.response.body after the response ended")
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = bytes(body)
            more_body = message.get("more_body", False)
            if not more_body and not self.sent:
                self.final = body
                self.done = True
                return
            if not self.sent:
                await self._start()
            if body:
                wait = self.body_out.put(body)
                if wait is not None:
                    await wait
            if not more_body:
                self.done = True
                await self.body_out.close()
        else:
            raise RuntimeError(f"unexpected ASGI message type {t!r} for http")

    async def _start(self):
        # Marked sent before the call: a send from another task meanwhile
        # queues its body behind the head instead of sending the head again.
        self.sent = True
        self.body_out = _Body(self.req)
        await self.body_out.carry("http_start", self.start[0], self.start[1])


async def handle(req, app_spec, scope, head, more_body):
    """Run the app for one request: ``head`` is the body the host read ahead
    (all of it unless ``more_body``)."""
    app = _apps.get(app_spec)
    if app is None:
        app = load(app_spec)
    scope["state"] = _lifespan_state.copy()
    c = _HTTPCycle(req, head, more_body)
    try:
        await app(scope, c.receive, c.send)
    except Exception:
        # As uvicorn: an exception once the response is complete (Starlette's
        # ServerErrorMiddleware sends its 500 page, then re-raises) is logged,
        # and the client gets that response, not the server's own 500.
        if c.done and not c.sent:
            await c._start()
            if c.final:
                await _go("http_write", req, c.final)
        elif c.body_out is not None:
            # What the app sent before it failed reaches the client, then
            # the cut; as a transport's buffer under uvicorn.
            try:
                await c.body_out.close()
            except Exception:
                pass
        raise
    start = c.start
    if start is None:
        raise RuntimeError("the app returned without sending http.response.start")
    if c.sent:
        await c.body_out.close()  # an app may return without the final body message
        return [start[0], [], b"", True]
    final = c.final
    return [start[0], start[1], final if final is not None else b"", False]


class Lifespan:
    """Runs the app's lifespan protocol: startup before serving, shutdown after."""

    def __init__(self, app_spec, required):
        self.app = load(app_spec)
        self.required = required
        self.inbox = asyncio.Queue()
        self.startup = asyncio.get_running_loop().create_future()
        self.shutdown = asyncio.get_running_loop().create_future()
        self.task = None

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        t = message["type"]
        fut = self.startup if t.startswith("lifespan.startup") else self.shutdown
        if not fut.done():
            if t.endswith(".failed"):
                fut.set_exception(RuntimeError(message.get("message", t)))
            else:
                fut.set_result(None)

    async def run(self):
        try:
            await self.app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"},
                            "state": _lifespan_state}, self.receive, self.send)
        except BaseException as e:
            self._end(e)
            return
        # The app returned without finishing the protocol: as uvicorn, go on
        # without lifespan (an error when --lifespan on asked for it).
        self._end(RuntimeError("the app returned during lifespan"))

    def _end(self, exc):
        if not self.startup.done():
            self.startup.set_exception(exc if self.required else _Unsupported())
        if not self.shutdown.done():
            # Awaited only if startup succeeded; a result, so no warning is left.
            self.shutdown.set_result(None)


class _Unsupported(Exception):
    pass


_lifespan = None


async def lifespan_startup(app_spec, mode):
    """Sends lifespan.startup; 'auto' tolerates apps without lifespan support."""
    global _lifespan
    if mode == "off":
        return "off"
    ls = Lifespan(app_spec, mode == "on")
    ls.task = asyncio.get_running_loop().create_task(ls.run())
    await ls.inbox.put({"type": "lifespan.startup"})
    try:
        await ls.startup
    except _Unsupported:
        return "unsupported"
    _lifespan = ls
    return "started"


async def lifespan_shutdown():
    global _lifespan
    ls, _lifespan = _lifespan, None
    if ls is None:
        return None
    await ls.inbox.put({"type": "lifespan.shutdown"})
    try:
        await asyncio.wait_for(asyncio.shield(ls.shutdown), 10)
    except (_Unsupported, asyncio.TimeoutError):
        pass
    return None


async def handle_ws(req, app_spec, scope):
    """Run the app for one websocket connection."""
    app = load(app_spec)
    scope["state"] = _lifespan_state.copy()
    # closed: "" while open, else who closed it ("client" or "app").
    st = {"connected": False, "accepted": False, "closed": ""}
    out = _WSOut(req)

    async def receive():
        if not st["connected"]:
            st["connected"] = True
            return {"type": "websocket.connect"}
        if st["closed"]:
            return {"type": "websocket.disconnect", "code": 1000}
        kind, *rest = await _go("ws_receive", req)
        if kind == "text":
            return {"type": "websocket.receive", "text": rest[0]}
        if kind == "bytes":
            return {"type": "websocket.receive", "bytes": rest[0]}
        st["closed"] = "client"
        return {"type": "websocket.disconnect", "code": rest[0]}

    async def send(message):
        t = message["type"]
        if st["closed"] == "client":
            raise ClientDisconnected(f"{t} after the client closed the websocket")
        if st["closed"]:
            raise RuntimeError(f"{t} after the websocket closed")
        if t == "websocket.accept":
            await _go("ws_accept", req, message.get("subprotocol"), list(message.get("headers", ())))
            st["accepted"] = True
        elif t == "websocket.send":
            if not st["accepted"]:
                raise RuntimeError("websocket.send before websocket.accept")
            if message.get("text") is not None:
                await out.send(message["text"], None)
            else:
                await out.send(None, bytes(message.get("bytes") or b""))
        elif t == "websocket.close":
            st["closed"] = "app"
            try:
                await out.flush()  # what was sent before goes first
            finally:
                await _go("ws_close", req, int(message.get("code", 1000)), message.get("reason") or "")
        else:
            raise RuntimeError(f"unexpected ASGI message type {t!r} for websocket")

    try:
        await app(scope, receive, send)
    finally:
        try:
            await out.flush()  # the messages the app sent reach the client before the close
        except Exception:
            pass
