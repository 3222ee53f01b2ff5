"""A FastAPI app behind Mangum (API Gateway HTTP API and function URL
events), the SnapStart example: its init imports FastAPI, pydantic and
Starlette and builds the app (hundreds of milliseconds), which a restored
snapshot skips. The hooks show SnapStart's life cycle."""

import os
import random

from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from snapshot_restore_py import register_after_restore, register_before_snapshot

app = FastAPI(title="lamb SnapStart example")
restores = []


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/hello")
def hello(name: str = "world"):
    return {
        "message": f"hello {name}",
        "initialization": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "restores": len(restores),
        "lucky": random.randint(1, 100),
    }


@app.post("/items")
def create_item(item: Item):
    return {"item": item, "total": round(item.price * 1.2, 2)}


# An HTTP API (payload 2.0) request for priming.
PRIMING_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/hello",
    "rawQueryString": "",
    "headers": {"host": "localhost"},
    "requestContext": {
        "accountId": "000000000000",
        "apiId": "priming",
        "domainName": "localhost",
        "http": {"method": "GET", "path": "/hello", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
        "requestId": "priming",
        "routeKey": "$default",
        "stage": "$default",
        "timeEpoch": 0,
    },
    "isBase64Encoded": False,
}


@register_before_snapshot
def prime():
    # AWS's advice for SnapStart ("priming"): run a request through the app
    # before the snapshot, so that what FastAPI, pydantic and anyio do lazily
    # on the first request is in the snapshot too, not in the first
    # invocation after each restore. What must not be in a snapshot
    # (connections, secrets, unique ids) would be dropped here.
    handler(PRIMING_EVENT, None)


@register_after_restore
def after_restore():
    restores.append(1)


handler = Mangum(app, lifespan="off")
