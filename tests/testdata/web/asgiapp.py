"""ASGI apps for the web tests."""
import asyncio

EVENTS = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hi from lifespan"
                EVENTS.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                EVENTS.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"][len(scope["root_path"]):]
    if path == "/scope":
        keys = ["type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                "query_string", "root_path", "client", "server"]
        text = repr({k: scope.get(k) for k in keys}) + "|" + repr(
            sorted(h for h in scope["headers"] if h[0].startswith(b"x-"))) + "|" + scope["state"].get("greeting", "")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": text.encode()})
        return
    if path == "/echo":
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-len", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"part {i}\n".encode(), "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"end\n"})
        return
    if path in ("/headers", "/headers-stream"):
        # Header bytes go on the wire as they are, however the pairs are held.
        headers = ((b"x-utf8", b"caf\xc3\xa9"), [b"x-latin", b"caf\xe9"], (b"x-bytearray", bytearray(b"ba")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        more = path == "/headers-stream"
        await send({"type": "http.response.body", "body": b"h", "more_body": more})
        if more:
            await send({"type": "http.response.body", "body": b"s"})
        return
    if path == "/bad-headers":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-n", 1)]})
        await send({"type": "http.response.body", "body": b"never"})
        return
    if path == "/sleep":
        await asyncio.sleep(5)
    if path == "/boom":
        raise ValueError("boom")
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello asgi"})


async def no_lifespan(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def ws_app(scope, receive, send):
    """Echo websocket: /ws echoes text and bytes; /refuse closes before accepting."""
    if scope["type"] == "lifespan":
        return await app(scope, receive, send)
    if scope["type"] != "websocket":
        return await app(scope, receive, send)
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/refuse":
        await send({"type": "websocket.close", "code": 1008})
        return
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") == "scheme please":
            await send({"type": "websocket.send", "text": scope["scheme"]})
            continue
        if msg.get("text") == "race please":
            # One task sends 16 binary messages of 64 KiB, each under a
            # timeout shorter than its wait; another sends 200 numbered texts
            # between other work. Then "done".
            async def big():
                for i in range(16):
                    m = {"type": "websocket.send", "bytes": bytes([i]) * 65536}
                    try:
                        await asyncio.wait_for(send(m), 0.00001)
                    except asyncio.TimeoutError:
                        pass

            async def small():
                for i in range(200):
                    await send({"type": "websocket.send", "text": f"y{i}"})
                    await asyncio.sleep(0)

            await asyncio.gather(big(), small())
            await send({"type": "websocket.send", "text": "done"})
            continue
        if msg.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": "echo: " + msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"][::-1]})


def make_app():
    """An app factory for --factory."""
    async def made(scope, receive, send):
        if scope["type"] != "http":
            return
        body = f"made {scope['http_version']} {scope['scheme']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    return made


DISCONNECTS = []


async def disconnect_app(scope, receive, send):
    """/wait waits for the client to go; /seen reports how many did."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/seen":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(DISCONNECTS)).encode()})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"streaming...", "more_body": True})
    msg = await receive()
    while msg["type"] == "http.request":
        msg = await receive()
    DISCONNECTS.append(msg["type"])


PACED = {"sent": 0}


async def bulk_app(scope, receive, send):
    """/up hashes the request body as it streams in; /down streams N MiB;
    /together streams from two tasks at once: one sends 64 pieces of 64 KiB,
    the other 640 of 64 bytes, yielding to the loop between them and now and
    then sleeping, so that other work runs between a call's end and its
    sender's turn. A piece is its task's letter, its number in two bytes,
    then filler."""
    import hashlib
    if scope["type"] != "http":
        return
    if scope["path"] == "/together":
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def big():
            for i in range(64):
                piece = b"A" + i.to_bytes(2, "big") + b"." * 65533
                await send({"type": "http.response.body", "body": piece, "more_body": True})

        async def small():
            for i in range(640):
                piece = b"b" + i.to_bytes(2, "big") + b"," * 61
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(0)
                if i % 7 == 0:
                    await asyncio.sleep(0.00005)

        await asyncio.gather(big(), small())
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/paced":
        # N pieces of about 100 KB, one per turn of the loop, with a
        # Content-Length when asked ("N&length"); PACED counts what went.
        q = scope["query_string"].decode()
        pieces = [bytes([97 + i % 26]) * (100_003 + i) for i in range(int(q.split("&")[0]))]
        headers = [(b"content-length", str(sum(map(len, pieces))).encode())] if q.endswith("&length") else []
        PACED["sent"] = 0
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            PACED["sent"] += len(piece)
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/paced-progress":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(PACED["sent"]).encode()})
        return
    if scope["path"] == "/up":
        h, n = hashlib.sha256(), 0
        while True:
            msg = await receive()
            chunk = msg.get("body", b"")
            h.update(chunk)
            n += len(chunk)
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{n} {h.hexdigest()}".encode()})
        return
    mib = int(scope["query_string"] or b"1")
    block = b"z" * (1 << 20)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(mib):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


LEFT = []


async def leaving_client_app(scope, receive, send):
    """/stream sends 64 KiB pieces until a send fails, records what it
    raised, and lets it propagate, as a websocket does with 64 KiB messages;
    /left reports what was recorded."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        try:
            for _ in range(1 << 16):
                await send({"type": "websocket.send", "bytes": b"x" * 65536})
        except Exception as e:
            LEFT.append(f"{type(e).__name__}:{isinstance(e, OSError)}")
            raise
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload":  # reads until the client leaves
        while (msg := await receive())["type"] == "http.request":
            pass
        LEFT.append(msg["type"])
        return
    if scope["path"] == "/overshoot":  # streams past its Content-Length
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        try:
            for _ in range(3):
                await send({"type": "http.response.body", "body": b"abc", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except Exception as e:
            LEFT.append(f"{type(e).__name__}:{isinstance(e, OSError)}")
            raise
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if scope["path"] == "/left":
        await send({"type": "http.response.body", "body": " ".join(LEFT).encode()})
        return
    try:
        for _ in range(1 << 16):  # 4 GiB: the client leaves long before
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
    except Exception as e:
        LEFT.append(f"{type(e).__name__}:{isinstance(e, OSError)}")
        raise
    await send({"type": "http.response.body", "body": b""})


BACKGROUND = set()  # the tasks /later starts, kept until they end
ARMED = []  # the timer /arm sets


async def idle_loop_app(scope, receive, send):
    """Routes that run while the event loop is idle.

    Each answers the name of the thread its first step ran on, then:
    /later?file=F answers at once and leaves work to the loop: a call_soon,
    a call_later and a task each create a file named F plus a suffix.
    /arm sets a timer an hour off; /swap?file=F cancels it and sets one that
    creates F.swap at once, so the loop has as many timers as before.
    /sleep?s=S sleeps S seconds and answers how long it slept.
    /where answers the name of the thread it ran on after it yielded to the
    loop, the loop's id, and whether a task runs it.
    """
    import threading
    import time
    import urllib.parse

    if scope["type"] != "http":
        return
    q = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))
    loop = asyncio.get_running_loop()
    path = scope["path"]
    first = threading.current_thread().name

    def touch(name: str) -> None:
        open(name, "w").close()

    if path == "/arm":
        ARMED.append(loop.call_later(3600, touch, "/nonexistent/never"))
        body = b"armed"
    elif path == "/swap":
        ARMED.pop().cancel()
        loop.call_later(0.01, touch, q["file"] + ".swap")
        body = b"swapped"
    elif path == "/later":

        async def later() -> None:
            await asyncio.sleep(0.05)
            touch(q["file"] + ".task")

        loop.call_soon(touch, q["file"] + ".soon")
        loop.call_later(0.05, touch, q["file"] + ".later")
        task = asyncio.ensure_future(later())
        BACKGROUND.add(task)
        task.add_done_callback(BACKGROUND.discard)
        body = b"scheduled"
    elif path == "/sleep":
        t0 = time.monotonic()
        await asyncio.sleep(float(q["s"]))
        body = repr(time.monotonic() - t0).encode()
    else:
        await asyncio.sleep(0)
        after = threading.current_thread().name
        body = f"{after} {id(loop)} {asyncio.current_task() is not None}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": first.encode() + b" " + body})
