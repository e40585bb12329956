"""The smallest ASGI app: `hornbeam start app:app --pythonpath examples/asgi_hello`.

Without -k, hornbeam sees that `app` is a coroutine function and serves it as
ASGI 3.
"""


async def app(scope, receive, send):
    if scope["type"] != "http":  # lifespan: nothing to set up
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
