"""A Starlette app, with a FastAPI app mounted at /fa, walked through their
usual flows by the compat test under hornbeam and under uvicorn."""

import contextlib
import hashlib
import os
import threading

from fastapi import Depends, FastAPI, Header, HTTPException as FastHTTPException
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (FileResponse, JSONResponse, PlainTextResponse, RedirectResponse,
                                 Response, StreamingResponse)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

DATA = os.path.join(os.environ["COMPAT_DIR"], "data.bin")

bg_ran = threading.Event()
ws_gone = threading.Condition()
ws_codes = []
bg_log = []


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


async def item(request: Request):
    return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params.get("q"),
                         "url": str(request.url_for("item", item_id=request.path_params["item_id"]))})


async def files(request: Request):
    return JSONResponse({"path": request.path_params["path"]})


async def stream(request: Request):
    n = int(request.query_params.get("n", "4"))

    async def gen():
        for i in range(n):
            yield f"part {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain", headers={"X-Parts": str(n)})


async def stream_fail(request: Request):
    async def gen():
        yield b"first\n"
        yield b"second\n"
        raise RuntimeError("the data source failed")

    return StreamingResponse(gen(), media_type="text/plain")


async def file(request: Request):
    return FileResponse(DATA, filename="data ü.bin")


async def bg(request: Request):
    bg_ran.clear()

    def task(who):
        bg_log.append(who)
        bg_ran.set()

    return JSONResponse({"queued": True}, background=BackgroundTask(task, request.query_params["who"]))


def ws_last(request: Request):
    """Whether the app saw a client close a /ws socket with ?code (waits)."""
    code = int(request.query_params["code"])
    with ws_gone:
        seen = ws_gone.wait_for(lambda: code in ws_codes, 10)
    return JSONResponse({"seen": seen, "code": code})


def bg_status(request: Request):
    # A sync endpoint runs on a thread: waiting here blocks no event loop.
    ran = bg_ran.wait(10)
    return JSONResponse({"ran": ran, "last": bg_log[-1] if bg_log else None})


async def form(request: Request):
    f = await request.form()
    out = {}
    for k, v in f.multi_items():
        if hasattr(v, "read"):
            data = await v.read()
            out[k] = {"filename": v.filename, "content_type": v.content_type,
                      "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        else:
            out[k] = v
    return JSONResponse(out)


async def stream_in(request: Request):
    h, n, chunks = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
        chunks += 1
    return JSONResponse({"n": n, "sha256": h.hexdigest(), "some_chunks": chunks > 0})


async def body(request: Request):
    b = await request.body()
    return JSONResponse({"n": len(b), "text": b[:64].decode("utf-8", "replace")})


async def slash(request: Request):
    return PlainTextResponse("slash page")


async def teapot(request: Request):
    raise HTTPException(418, detail="short and stout")


async def boom(request: Request):
    raise RuntimeError("boom")


async def info(request: Request):
    return JSONResponse({
        "client_host": request.client.host if request.client else None,
        "url": str(request.url), "base_url": str(request.base_url),
        "url_for": str(request.url_for("item", item_id=3)),
        "path": request.scope["path"], "root_path": request.scope.get("root_path"),
        "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
        "query": request.scope["query_string"].decode("latin-1"),
        "params": sorted(request.query_params.multi_items()),
        "http_version": request.scope["http_version"], "scheme": request.url.scheme,
        "headers": sorted(request.headers.items()),
        "server_port": (request.scope.get("server") or [None, None])[1],
    })


async def lifespan_state(request: Request):
    return JSONResponse({"greeting": request.state.greeting})


async def cookie_set(request: Request):
    r = JSONResponse({"ok": True})
    r.set_cookie("theme", "dark", max_age=3600, httponly=True, samesite="strict")
    r.set_cookie("lang", "fr", path="/")
    return r


async def cookie_get(request: Request):
    return JSONResponse(sorted(request.cookies.items()))


async def cookie_del(request: Request):
    r = JSONResponse({"ok": True})
    r.delete_cookie("theme")
    return r


async def redirect(request: Request):
    return RedirectResponse(request.url_for("item", item_id=9), status_code=303)


async def head_get(request: Request):
    return Response(b"x" * 1000, media_type="application/octet-stream")


async def raw_header(request: Request):
    # ASGI header values are bytes, sent as they are: latin-1 (as Starlette
    # encodes str) and raw UTF-8.
    r = PlainTextResponse("ok", headers={"x-latin1": "caf\u00e9"})
    r.raw_headers.append((b"x-utf8", "caf\u00e9 \u2713".encode()))
    return r


async def ws_echo(websocket: WebSocket):
    await websocket.accept(subprotocol=websocket.scope.get("subprotocols", [None])[0]
                           if websocket.scope.get("subprotocols") else None)
    await websocket.send_text(f"hello {websocket.query_params.get('name', '')} {websocket.url.path}")
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                with ws_gone:
                    ws_codes.append(msg.get("code"))
                    ws_gone.notify_all()
                return
            if msg.get("text") is not None:
                if msg["text"] == "close":
                    await websocket.close(code=4001, reason="bye now")
                    return
                if msg["text"] == "raise":
                    raise RuntimeError("ws boom")
                await websocket.send_text("echo: " + msg["text"])
            else:
                await websocket.send_bytes(msg["bytes"][::-1])
    except WebSocketDisconnect:
        return


async def ws_many(websocket: WebSocket):
    await websocket.accept()
    n = int(websocket.query_params["n"])
    for i in range(n):
        await websocket.send_text(f"message {i}")
    await websocket.close(code=1000, reason="all sent")


async def ws_reject(websocket: WebSocket):
    await websocket.close(code=1008)


async def ws_json(websocket: WebSocket):
    await websocket.accept()
    data = await websocket.receive_json()
    await websocket.send_json({"got": data, "n": len(data)})
    await websocket.close()


async def not_found(request: Request, exc: HTTPException):
    return JSONResponse({"error": "not found", "path": request.url.path}, status_code=404)


async def http_error(request: Request, exc: HTTPException):
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers={"X-Handled": "yes"})


fa = FastAPI(title="compat")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def token(x_token: str = Header(default="none")):
    return x_token


@fa.get("/items/{item_id}")
async def fa_item(item_id: int, q: str | None = None, tok: str = Depends(token)):
    if item_id == 404:
        raise FastHTTPException(status_code=404, detail="no such item")
    return {"item_id": item_id, "q": q, "token": tok}


@fa.post("/items", status_code=201)
async def fa_create(it: Item):
    return {"created": it.dict()}


@fa.get("/sync")
def fa_sync():
    return {"sync": True}


app = Starlette(
    routes=[
        Route("/items/{item_id:int}", item, name="item"),
        Route("/files/{path:path}", files),
        Route("/stream", stream),
        Route("/stream-fail", stream_fail),
        Route("/file", file),
        Route("/bg", bg),
        Route("/bg/status", bg_status),
        Route("/ws/last", ws_last),
        Route("/form", form, methods=["POST"]),
        Route("/stream-in", stream_in, methods=["POST", "PUT"]),
        Route("/body", body, methods=["GET", "POST"]),
        Route("/slash/", slash),
        Route("/teapot", teapot),
        Route("/boom", boom),
        Route("/info", info, methods=["GET", "POST"]),
        Route("/lifespan", lifespan_state),
        Route("/cookie/set", cookie_set),
        Route("/cookie/get", cookie_get),
        Route("/cookie/del", cookie_del),
        Route("/redirect", redirect),
        Route("/bytes", head_get),
        Route("/raw-header", raw_header),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws-reject", ws_reject),
        WebSocketRoute("/ws-many", ws_many),
        WebSocketRoute("/ws-json", ws_json),
        Mount("/fa", fa),
    ],
    exception_handlers={404: not_found, HTTPException: http_error},
    lifespan=lifespan,
)
