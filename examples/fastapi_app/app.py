"""A FastAPI app served by hornbeam: `bin/hornbeam start app:app -k asgi --pythonpath examples/fastapi_app`.

Path and query parameters, a JSON body, a streaming response, a background
task and node state, as a user's API would have them.
"""
from typing import Optional

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from hornbeam_erlang import node, state_get, state_incr

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.on_event("startup")
async def startup() -> None:
    app.state.started = True


@app.get("/")
async def root() -> dict:
    return {"node": node(), "hits": state_incr("fastapi:hits"), "started": app.state.started}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None) -> dict:
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item, background: BackgroundTasks) -> dict:
    background.add_task(state_incr, "fastapi:created")
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2), "tags": item.tags}


@app.get("/created")
def created() -> dict:
    return {"created": state_get("fastapi:created") or 0}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers():
        for i in range(5):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")
