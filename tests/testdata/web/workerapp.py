"""An ASGI app for the --workers tests: which process answered, node-wide
state, and rpc_call from a worker."""
import asyncio
import gc
import os

from hornbeam_erlang import node, rpc_call, state_incr


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, qs = scope["path"], scope["query_string"].decode()
    if path == "/pid":
        body = str(os.getpid())
    elif path == "/incr":
        body = str(state_incr("hits"))
    elif path == "/gomaxprocs":
        body = os.environ.get("GOMAXPROCS", "")
    elif path == "/gc":  # objects frozen; whether the collector still scans this app
        body = f"{gc.get_freeze_count()} {any(o is app for o in gc.get_objects())}"
    elif path == "/node":
        body = node()
    elif path == "/rpc":  # ?NODE: that node's pid, through rpc_call
        body = str(await asyncio.to_thread(rpc_call, qs, "os", "getpid", [], 5000))
    elif path == "/cached":  # the pid of the worker that computed it first
        import hornbeam_ml
        body = str(hornbeam_ml.cached_inference(lambda _: os.getpid(), qs))
    elif path == "/slow":
        await asyncio.sleep(float(qs or "1"))
        body = "slept"
    else:
        body = "hello"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode()})
