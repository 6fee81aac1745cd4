#!/usr/bin/env python3
"""Writes a synthetic recording of a night for `zombiescan report`.

A server whose workers are recycled: each sample lists 50 processes, of
which 5 are new pids, 50 ports, 20 listeners with their queues, and the
drop counters. 17,280 samples is a night at
`--watch 5s`. Measure with:

    python3 bench/night.py 17280 /tmp/night.ndjson
    /usr/bin/time -f '%e s %M KiB' zombiescan report /tmp/night.ndjson --format markdown >/dev/null
"""
import json
import sys


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    live = list(range(1000, 1050))
    next_pid = 1050
    with open(path, "w") as out:
        for i in range(n):
            for _ in range(5):
                live.pop(0)
                live.append(next_pid)
                next_pid += 1
            procs = [
                {"pid": p, "comm": "gunicorn", "sockets": 3, "fds_open": 12, "fd_limit": 1024,
                 "by_state": {"ESTABLISHED": 2, "CLOSE_WAIT": i % 7}}
                for p in live
            ]
            ports = [
                {"port": 30000 + k, "direction": "inbound", "remote": None,
                 "by_state": {"ESTABLISHED": 5, "CLOSE_WAIT": i % 5}}
                for k in range(50)
            ]
            sample = {
                "t": "2026-11-25T03:00:00.000Z", "t_ms": 1795575845000 + i * 5000,
                "host": "h", "netns": "n", "total": 300,
                "by_state": {"ESTABLISHED": 250, "CLOSE_WAIT": i % 50, "LISTEN": 50},
                "ports": ports, "processes": procs,
                "findings": [{"kind": "close_wait", "severity": "warning", "count": i % 50,
                              "ports": [30020], "pids": live[:3]}],
                "counters": {"ListenOverflows": i, "ListenDrops": i, "TCPTimeouts": 3 * i},
                "filter": "port 30020",
                "listeners": [{"at": f"port {30000 + k}", "queue": (i + k) % 20, "backlog": 16}
                              for k in range(20)],
            }
            out.write(json.dumps(sample) + "\n")


if __name__ == "__main__":
    main()
