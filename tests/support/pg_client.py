"""An application's pool of PostgreSQL connections, with psycopg, for
zombiescan's live tests.

  pg_client.py DSN --count N [--query-when FILE]
      opens N connections (the DSN's parameters apply: keepalives=0 turns
      TCP keepalive off), runs one query on each, prints {"ready": N} and
      holds them idle. When FILE appears, every connection runs a query at
      once, in its own thread (they block if the server is unreachable).
Only ever connects to the DSN it is given, which the test keeps inside its
own namespaces.
"""
import argparse
import json
import os
import sys
import threading
import time

import psycopg


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--query-when")
    a = p.parse_args()
    conns = [psycopg.connect(a.dsn, autocommit=True) for _ in range(a.count)]
    for c in conns:
        c.execute("SELECT 1").fetchone()
    sys.stdout.write(json.dumps({"ready": len(conns)}) + "\n")
    sys.stdout.flush()
    if a.query_when:
        while not os.path.exists(a.query_when):
            time.sleep(0.05)
        for c in conns:
            threading.Thread(target=lambda c=c: c.execute("SELECT 2"), daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
