"""Clients that open connections, send half a request and wait.

    slow_clients.py HOST PORT COUNT [CAFILE]

Each of COUNT connections sends the start of a GET (no blank line ends
its headers) and nothing more, after a TLS handshake when CAFILE (the
certificate authority to verify the server with) is given; the sockets are held open until stdin
closes. Prints "connected N" once all are open, then "closed N" with how
many the server has closed (a read returned end of file or a reset), each
time that number changes.
"""

import resource
import select
import socket
import ssl
import sys


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tls = None
    if len(sys.argv) > 4:
        tls = ssl.create_default_context(cafile=sys.argv[4])
    want = count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port))
        try:
            if tls is not None:
                s = tls.wrap_socket(s, server_hostname=host)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: slow\r\nUser-Agent: slo")
        except OSError:
            pass  # closed at once: counted below
        s.setblocking(False)
        socks.append(s)
    print(f"connected {len(socks)}", flush=True)
    poll = select.poll()
    for s in socks:
        poll.register(s, select.POLLIN)
    poll.register(sys.stdin, select.POLLIN | select.POLLHUP)
    by_fd = {s.fileno(): s for s in socks}
    closed = 0
    while by_fd:
        for fd, _ in poll.poll():
            if fd == sys.stdin.fileno():
                return
            s = by_fd.pop(fd, None)
            if s is None:
                continue
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                data = b"pending"  # a TLS record with no data in it
            except OSError:
                data = b""
            if data:
                by_fd[fd] = s  # an answer: not closed yet
                continue
            poll.unregister(fd)
            closed += 1
            print(f"closed {closed}", flush=True)
    sys.stdin.read()


main()
