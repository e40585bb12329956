"""The apps of the HTTP benchmarks, served alike by hornbeam and its peers."""
import asyncio

HELLO = b"Hello, world!"
BIG = b"x" * 65536


async def asgi_hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": HELLO})


async def asgi_64k(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
    await send({"type": "http.response.body", "body": BIG})


async def asgi_stream_1m(scope, receive, send):
    """1 MiB sent as 16 pieces of 64 KiB, as a download or a large export is."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
    for i in range(16):
        await send({"type": "http.response.body", "body": BIG, "more_body": i < 15})


async def asgi_sleep(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.001)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": HELLO})


def wsgi_hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [HELLO]


def wsgi_64k(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [BIG]


def _fastapi_app():
    """A FastAPI JSON route, as a user's API has it."""
    from typing import Optional

    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: Optional[str] = None) -> dict:
        return {"item_id": item_id, "q": q}

    return app


def _flask_app():
    """A Flask route returning JSON."""
    from flask import Flask, jsonify

    app = Flask(__name__)

    @app.route("/items/<int:item_id>")
    def read_item(item_id: int):
        return jsonify(item_id=item_id, q=None)

    return app


fastapi_items = _fastapi_app()
flask_items = _flask_app()
