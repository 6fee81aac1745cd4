"""An application's AMQP connections, with pika, for zombiescan's live tests.

  amqp_client.py HOST --count N [--heartbeat S] [--publish-when FILE]
      opens N BlockingConnections to HOST:5672 as guest (heartbeat=S; 0
      turns AMQP heartbeats off), declares a queue on each, prints
      {"ready": N} and holds them idle. When FILE appears, every
      connection publishes a message at once, in its own thread (they
      block if the broker is unreachable).
Only ever connects to the host it is given, which the test keeps inside its
own namespaces.
"""
import argparse
import json
import os
import sys
import threading
import time

import pika


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--heartbeat", type=int, default=0)
    p.add_argument("--publish-when")
    a = p.parse_args()
    params = pika.ConnectionParameters(host=a.host, port=5672, heartbeat=a.heartbeat)
    conns = [pika.BlockingConnection(params) for _ in range(a.count)]
    chans = [c.channel() for c in conns]
    for ch in chans:
        ch.queue_declare(queue="zombiescan-test")
    sys.stdout.write(json.dumps({"ready": len(conns)}) + "\n")
    sys.stdout.flush()
    if a.publish_when:
        while not os.path.exists(a.publish_when):
            time.sleep(0.05)

        def publish(ch):
            ch.basic_publish(exchange="", routing_key="zombiescan-test", body=b"x" * 512)
            # Only a frame that needs an answer waits for one.
            ch.queue_declare(queue="zombiescan-test", passive=True)

        for ch in chans:
            threading.Thread(target=publish, args=(ch,), daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
