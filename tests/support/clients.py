"""HTTP clients for zombiescan's live tests, with httpx.

  clients.py URL --count N --timeout T [--then leave|wait]
      N concurrent GETs, each giving up after T seconds; prints one JSON
      line {"done": N, "errors": {...}, "status": {"502": n, ...}} and
      then exits (leave) or waits on
      stdin, keeping its sockets (wait).
  clients.py URL --loop --concurrency C
      keep-alive load: C clients each sending GETs back to back until
      stdin closes; prints {"ready": true} after the first round.
  clients.py URL --keep --count N
      N httpx.Client GETs whose connections stay in their pools, idle,
      until stdin closes (the server closes them at its keep-alive timeout);
      prints {"ready": true, "kept": N}.
  clients.py URL --no-read --count N [--shrink]
      N raw connections that send a GET and never read the response
      (--shrink: with a receive buffer cut to 4 KiB once connected).
Only ever talks to the URL it is given, which the test keeps inside its
own namespace.
"""
import argparse
import asyncio
import json
import socket
import sys
import threading
from urllib.parse import urlsplit

import httpx


def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


async def burst(url, count, timeout):
    errors = {}
    statuses = {}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as c:
        async def one():
            try:
                r = await c.get(url)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            except Exception as e:  # the point: clients that give up
                name = type(e).__name__
                errors[name] = errors.get(name, 0) + 1
        await asyncio.gather(*(one() for _ in range(count)))
    return errors, statuses


async def loop(url, concurrency, stop):
    async with httpx.AsyncClient(timeout=10) as c:
        async def worker():
            while not stop.is_set():
                r = await c.get(url)
                r.raise_for_status()
        await asyncio.gather(*(c.get(url) for _ in range(concurrency)))
        say(ready=True)
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def no_read(url, count, shrink):
    u = urlsplit(url)
    socks = []
    for _ in range(count):
        s = socket.create_connection((u.hostname, u.port))
        if shrink:
            # A receive buffer cut after the window was offered: the server
            # retransmits what no longer fits, and the client acknowledges.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\n\r\n".encode())
        socks.append(s)
    return socks


def keep(url, count):
    # httpx checks keepalive_expiry only when the pool is next used: an idle
    # pool keeps what the server closed.
    sessions = []
    for _ in range(count):
        c = httpx.Client(timeout=10)
        c.get(url).raise_for_status()
        sessions.append(c)
    return sessions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--then", choices=["leave", "wait"], default="leave")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--no-read", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--shrink", action="store_true")
    a = p.parse_args()
    if a.loop:
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        asyncio.run(loop(a.url, a.concurrency, stop))
        return
    if a.keep:
        sessions = keep(a.url, a.count)
        say(ready=True, kept=len(sessions))
        sys.stdin.read()
        return
    if a.no_read:
        socks = no_read(a.url, a.count, a.shrink)
        say(ready=True, connected=len(socks))
        sys.stdin.read()
        return
    errors, statuses = asyncio.run(burst(a.url, a.count, a.timeout))
    say(done=a.count, errors=errors, status=statuses)
    if a.then == "wait":
        sys.stdin.read()


if __name__ == "__main__":
    main()
