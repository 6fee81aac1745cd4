#!/usr/bin/env python3
"""Builds real TCP sockets for zombiescan's live tests and benchmark.

Run inside a test network namespace. Prints one JSON line per event on
stdout ({"ready": ..., "pids": [...]}, {"accepted": n}) and holds its
sockets until stdin closes or it is killed. Only ever talks to the address
it is given, which the caller keeps inside its own namespaces.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time


def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def fill(conn):
    """Writes until the kernel refuses more: the peer is not reading."""
    conn.setblocking(False)
    chunk = b"x" * 65536
    try:
        while True:
            conn.send(chunk)
    except BlockingIOError:
        pass


def stream(conn):
    """Writes a little, forever: data stays in flight if the peer vanishes."""
    while True:
        try:
            conn.send(b"z" * 1024)
        except OSError:
            return
        time.sleep(0.05)


def echo(conn):
    while True:
        try:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)
        except OSError:
            return


def serve(lst, args, held):
    n = 0
    while True:
        try:
            conn, _ = lst.accept()
        except OSError:
            return
        n += 1
        if args.keepalive:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if args.on_accept == "close":
            conn.close()
        else:
            if args.on_accept == "write":
                fill(conn)
            elif args.on_accept == "shutdown":
                conn.shutdown(socket.SHUT_WR)
            elif args.on_accept in ("stream", "echo"):
                target = stream if args.on_accept == "stream" else echo
                threading.Thread(target=target, args=(conn,), daemon=True).start()
            held.append(conn)
        if not args.quiet or n % 1000 == 0:
            say(accepted=n, pid=os.getpid())


def listen(args):
    lst = socket.socket(family_of(args.host), socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.rcvbuf:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    lst.bind((args.host, args.port))
    lst.listen(args.backlog)
    pids = [os.getpid()]
    for _ in range(args.workers - 1):
        child = os.fork()
        if child == 0:
            pids = [os.getpid()]
            break
        pids.append(child)
    held = []
    if args.nofile_headroom is not None:
        # A soft limit just above what is open now: fd_exhaustion.
        import resource
        n = len(os.listdir("/proc/self/fd")) - 1
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + args.nofile_headroom, hard))
    if not args.no_accept:
        threading.Thread(target=serve, args=(lst, args, held), daemon=True).start()
    if pids[0] == os.getpid() and (args.workers == 1 or len(pids) == args.workers):
        say(ready="listen", pids=pids)
    wait()


def reader(s):
    while True:
        try:
            if not s.recv(65536):
                return
        except OSError:
            return


def chat(s):
    """Traffic both ways: send, read the echo, repeat."""
    while True:
        try:
            s.sendall(b"ping" * 25)
            s.recv(4096)
        except OSError:
            return
        time.sleep(0.1)


def open_one(args, i=0):
    """Connection I as ARGS asks; None when --then close closed it."""
    host = args.host
    if args.spread > 1:
        # The I-th of the addresses from --host up: many distinct peers.
        import ipaddress
        host = str(ipaddress.ip_address(args.host) + (args.spread_offset + i) % args.spread)
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    if args.keepalive:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if args.rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    if args.nonblocking:
        s.setblocking(False)
        try:
            s.connect((host, args.port))
        except BlockingIOError:
            pass
    else:
        s.connect((host, args.port))
    if args.send and not args.send_when:
        s.sendall(b"y" * args.send)
    if args.then == "close":
        s.close()
        return None
    if args.read or args.chat:
        target = chat if args.chat else reader
        threading.Thread(target=target, args=(s,), daemon=True).start()
    return s


def connect(args):
    if args.every:
        # One connection now, the others one every EVERY seconds.
        threading.Thread(target=connect_slowly, args=(args,), daemon=True).start()
        say(ready="connect", pids=[os.getpid()])
        wait()
    held = [s for s in (open_one(args, i) for i in range(args.count)) if s]
    if args.then == "close-after-peer":
        # Wait for the peer's FIN (recv returns b""), then close: TIME_WAIT here
        # only if we closed first, so this leaves TIME_WAIT on the peer.
        for s in held:
            s.recv(1)
            s.close()
        held.clear()
    say(ready="connect", pids=[os.getpid()])
    if args.send_when:
        # Connected now, sending only when the test says (the file exists):
        # the server has accepted these before whatever the test does next.
        while not os.path.exists(args.send_when):
            time.sleep(0.05)
        for s in held:
            s.sendall(b"y" * args.send)
    wait()


def connect_slowly(args):
    held = []
    for _ in range(args.count):
        try:
            s = open_one(args)
        except OSError:
            return
        if s:
            held.append(s)
        time.sleep(args.every)
    while True:
        time.sleep(3600)


def wait():
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    os._exit(0)


def main():
    # Many sockets per process (the benchmark): up to the hard limit.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    # No -h: "-host-port" (docker-proxy's) must not read as a help flag.
    l = sub.add_parser("listen", add_help=False)
    l.add_argument("--host", default="127.0.0.1")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--backlog", type=int, default=128)
    l.add_argument("--workers", type=int, default=1)
    l.add_argument("--no-accept", action="store_true")
    l.add_argument(
        "--on-accept",
        choices=["hold", "close", "write", "stream", "echo", "shutdown"],
        default="hold",
        help="hold: never read or write; close: close at once; write: fill the "
        "send buffer once; stream: write a little forever; echo: send back what "
        "arrives; shutdown: shut down the sending side and hold the socket",
    )
    l.add_argument("--keepalive", action="store_true")
    l.add_argument("--rcvbuf", type=int, default=0)
    l.add_argument("--nofile-headroom", type=int, default=None)
    l.add_argument("--quiet", action="store_true", help="report every 1000th accept only")
    c = sub.add_parser("connect", add_help=False)
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--spread", type=int, default=1,
                   help="cycle over SPREAD consecutive addresses from --host")
    c.add_argument("--spread-offset", type=int, default=0,
                   help="the address of the first connection, counted from --host")
    c.add_argument("--keepalive", action="store_true")
    c.add_argument("--nonblocking", action="store_true")
    c.add_argument("--send", type=int, default=0)
    c.add_argument("--send-when", default=None,
                   help="send the --send bytes only once this file exists")
    c.add_argument("--rcvbuf", type=int, default=0)
    c.add_argument("--read", action="store_true", help="read everything, forever")
    c.add_argument("--every", type=float, default=0.0, help="one connection every EVERY seconds")
    c.add_argument("--chat", action="store_true", help="send and read back, forever")
    c.add_argument("--then", choices=["hold", "close", "close-after-peer"], default="hold")
    # Unknown arguments are ignored: a test may dress this process up as
    # another program (docker-proxy -host-port ...).
    args, _ = p.parse_known_args()
    {"listen": listen, "connect": connect}[args.role](args)


if __name__ == "__main__":
    main()
