"""The applications zombiescan's live tests serve with real servers.

`asgi` is served by uvicorn, `wsgi` by gunicorn; neither needs a framework.
Paths:
  /ok        answers at once
  /block     async handler that calls time.sleep: the event loop stalls
             (under gunicorn: a sync worker busy for BLOCK_S seconds)
  /slow      async handler that awaits asyncio.sleep: the loop stays free
  /stream    a response that never ends, 64 KiB at a time
  /db        async handler that runs a synchronous psycopg query,
             SELECT pg_sleep(BLOCK_S), on the database PG_DSN names: the
             event loop waits on PostgreSQL
BLOCK_S (environment, default 300) is how long /block and /slow take.
"""
import asyncio
import os
import time

BLOCK_S = float(os.environ.get("BLOCK_S", "300"))
CHUNK = b"x" * 65536


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/block":
        time.sleep(BLOCK_S)
    elif path == "/slow":
        await asyncio.sleep(BLOCK_S)
    elif path == "/db":
        import psycopg
        with psycopg.connect(os.environ["PG_DSN"], autocommit=True) as c:
            c.execute("SELECT pg_sleep(%s)", (BLOCK_S,))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    if path == "/stream":
        while True:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"ok\n"})


def wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/block":
        time.sleep(BLOCK_S)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
