"""Apps for the hostile-client tests: they echo what the server gave them and
send exactly the headers they are told to."""
import json


def wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(body)).encode()]
    if path == "/environ":
        keep = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in (
            "wsgi.input_terminated", "wsgi.multiprocess", "wsgi.multithread", "CONTENT_LENGTH", "RAW_URI")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(keep, sort_keys=True).encode()]
    if path == "/two-lengths":
        start_response("200 OK", [("Content-Length", "2"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/wrong-length":
        start_response("200 OK", [("Content-Length", "50")])
        return [b"hello"]
    if path == "/switching":
        start_response("101 Switching Protocols", [("Upgrade", "foo")])
        return [b""]
    if path == "/bare":
        start_response("200 OK", [])
        return [b"<html>no type given</html>"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/receive":
        # What a GET without a body gives receive() first (Django reads it).
        msg = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": repr(sorted(msg.items())).encode()})
        return
    if path == "/echo":
        n = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                raise RuntimeError(msg["type"])
            n += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(n).encode()})
        return
    if path == "/headers":
        names = sorted(k.decode() for k, _ in scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": " ".join(names).encode()})
        return
    if path == "/two-lengths":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})
        return
    if path == "/":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    # No content-type: the server must not invent one.
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"<html>no type given</html>"})


async def slow_asgi(scope, receive, send):
    """/slow answers after 1.5 s; the lifespan shutdown says it ran."""
    import asyncio
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.shutdown":
                print("lifespan shutdown ran", flush=True)
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/slow":
        print("slow request started", flush=True)
        await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


def crashing(environ, start_response):
    """/crash kills the worker as a segfault in an extension would."""
    if environ["PATH_INFO"] == "/crash":
        import os
        import signal
        os.kill(os.getpid(), signal.SIGSEGV)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
