#!/usr/bin/env python3
"""zombiescan against ss on the same real sockets, in one run.

For each N, builds N TCP connections on the loopback of a network namespace
created for the purpose (4 in 5 ESTABLISHED, 1 in 5 closed by the client and
never by the server: CLOSE_WAIT on one side, orphaned FIN_WAIT2 on the
other), spread over processes of at most 9,000 connections each (the
open-file hard limit is 20,000 per process). Then runs, alternating, ROUNDS
times each:

    zombiescan --json               full scan: owners and tcp_info
    zombiescan --no-processes --json  the same without owners
    zombiescan --port 30020 --json  one port, filtered in the kernel
    zombiescan analyze CAPTURE --json   a capture of the scene, read back
    ss -tani, ss -tanpi, ss -tanp, ss -tan
    bench/floor.c                       the /proc/*/fd walk alone, in C

all through `ip netns exec` into that namespace, and reports the median wall
time, its ratio to `ss -tani` (the dump and tcp_info, no owners), and the
peak RSS of each; then what the owners add to a full scan, and a
`--port` scan's share of a full one. The namespace and
every process in it are removed at the end, even on failure or Ctrl-C.

With --recorder, measures instead the CPU a recorder costs: N connections
whose server ends are in one namespace and client ends in a second, joined
by a veth pair (a server host with N connections: N sockets), and a
`zombiescan --watch 5s --record FILE` in the server's namespace for
--seconds (default 300: one period of the recorder's full /proc walk);
CPU time (user + system, /usr/bin/time) over wall time is its share of one
core.

With --exporter, measures the CPU of `zombiescan serve` scraped every 15 s
for --seconds: N connections opened from one namespace (the host scanned)
to --peers distinct remote endpoints in a second (addresses of
10.78.0.0/16, all local there, on 12 listening ports), so that the labels'
bounds are tried; reports the exporter's CPU share of one core (from
/proc/PID/stat), its peak RSS (VmHWM), each scrape's scan time and the
series a scrape holds.

Every mode ends with the kernel's own floor on the same sockets, whatever
reads them: the kernel time of one inet_diag dump that walks the socket
table and returns nothing, of one that hands over every socket, and of one
with every socket's tcp_info (and, for the recorder and the exporter, the
share of one core the last is at their period). No sample that reads
every socket can cost less.

With --unix U, U unix stream sockets sit beside the TCP ones (a listener
and U/2 connections, both ends held by one process); with --baseline PATH
another zombiescan binary is measured in the same alternation (the cost
of a change, on the same sockets).

Usage (as root): python3 bench/bench.py [--rounds R] [--bin PATH] [--unix U]
                                        [--baseline PATH] [N ...]
                 python3 bench/bench.py --recorder [--seconds S] [N ...]
                 python3 bench/bench.py --exporter [--seconds S] [--peers P] [N ...]
"""
import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKETS_PY = os.path.join(ROOT, "tests", "support", "sockets.py")
PER_PORT = 4500  # connections per listener port (and per process)
FIRST_PORT = 30020


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Namespace:
    def __init__(self, name):
        self.name = name
        self.procs = []
        sh("ip", "netns", "del", name, check=False)
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        # Room for the connections: local ports, accept queues.
        for k, v in [("net.ipv4.ip_local_port_range", "10000 65000"), ("net.core.somaxconn", "8192")]:
            self.exec("sysctl", "-qw", f"{k}={v}")

    def link(self, other, here, there):
        """A veth pair to `other`: HERE/24 on this side, THERE/24 on its."""
        a, b = f"zsv{os.getpid() % 100000}a", f"zsv{os.getpid() % 100000}b"
        sh("ip", "link", "add", a, "netns", self.name, "type", "veth", "peer", b, "netns", other.name)
        sh("ip", "-n", self.name, "addr", "add", f"{here}/24", "dev", a)
        sh("ip", "-n", other.name, "addr", "add", f"{there}/24", "dev", b)
        sh("ip", "-n", self.name, "link", "set", a, "up")
        sh("ip", "-n", other.name, "link", "set", b, "up")

    def exec(self, *cmd):
        return sh("ip", "netns", "exec", self.name, *cmd)

    def spawn(self, *args):
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "python3", SOCKETS_PY, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)
        line = p.stdout.readline()
        if not line or "ready" not in json.loads(line):
            raise RuntimeError(f"sockets.py {args} failed to start")
        return p

    def count(self):
        """ESTABLISHED, CLOSE_WAIT, all, from the kernel's own summary."""
        out = self.exec("ss", "-tanH").stdout.splitlines()
        est = sum(1 for l in out if l.startswith("ESTAB"))
        cw = sum(1 for l in out if l.startswith("CLOSE-WAIT"))
        return est, cw, len(out)

    def close(self):
        pids = sh("ip", "netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        for p in self.procs:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
        sh("ip", "netns", "del", self.name, check=False)


SERVER_IP, CLIENT_IP = "10.77.0.1", "10.77.0.2"


def build(srv, n, cli=None):
    """N connections, 1 in 5 closed by its client (CLOSE_WAIT at the server).
    Servers in SRV; clients on SRV's loopback, or in CLI over a veth pair
    (then SRV holds only the server ends, as a server host does)."""
    host = "127.0.0.1"
    if cli:
        srv.link(cli, SERVER_IP, CLIENT_IP)
        host = SERVER_IP
    clients = cli or srv
    ports = (n + PER_PORT - 1) // PER_PORT
    for i in range(ports):
        srv.spawn("listen", "--host", host, "--port", str(FIRST_PORT + i), "--backlog", "8192", "--quiet")
    left = n
    for i in range(ports):
        k = min(PER_PORT, left)
        left -= k
        closed = k // 5
        port = str(FIRST_PORT + i)
        clients.spawn("connect", "--host", host, "--port", port, "--count", str(k - closed))
        if closed:
            clients.spawn("connect", "--host", host, "--port", port, "--count", str(closed), "--then", "close")
    want_cw = sum(min(PER_PORT, n - i * PER_PORT) // 5 for i in range(ports))
    # Both ends of an open connection are ESTABLISHED where SRV holds both.
    want_est = (n - want_cw) * (1 if cli else 2)
    deadline = time.time() + 120
    while True:
        est, cw, total = srv.count()
        if est >= want_est and cw >= want_cw:
            return est, cw, total
        if time.time() > deadline:
            raise RuntimeError(f"built only {est} ESTABLISHED, {cw} CLOSE_WAIT of {want_est}, {want_cw}")
        time.sleep(0.5)


def build_spread(host, peers, n, endpoints, ports=12):
    """N connections from HOST to ENDPOINTS distinct (address, port) pairs
    in PEERS: addresses of 10.78.0.0/16, local to PEERS, on PORTS ports."""
    host.link(peers, CLIENT_IP, SERVER_IP)
    peers.exec("ip", "route", "add", "local", "10.78.0.0/16", "dev", "lo")
    host.exec("ip", "route", "add", "10.78.0.0/16", "via", SERVER_IP)
    per_port = (n + ports - 1) // ports
    addresses = max(1, endpoints // ports)
    left = n
    for i in range(ports):
        k = min(per_port, left)
        left -= k
        port = str(FIRST_PORT + i)
        peers.spawn("listen", "--host", "0.0.0.0", "--port", port, "--backlog", "8192", "--quiet")
        if k:
            host.spawn("connect", "--host", "10.78.0.1", "--spread", str(addresses),
                       "--port", port, "--count", str(k))
    deadline = time.time() + 180
    while True:
        est, _, total = host.count()
        if est >= n:
            return est, addresses * ports, total
        if time.time() > deadline:
            raise RuntimeError(f"built only {est} ESTABLISHED of {n}")
        time.sleep(0.5)


SCRAPE = """
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:10130/metrics", timeout=60).read().decode()
series = [l for l in body.splitlines() if l and not l.startswith("#")]
scan = [l.split()[-1] for l in series if l.startswith("zombiescan_scrape_duration_seconds")]
print(len(series), scan[0] if scan else "nan", len(body))
"""


# The kernel's own cost of handing over the socket table, whatever reads
# it: kernel time (getrusage) of one inet_diag dump (the older
# TCPDIAG_GETSOCK request, both families in one walk, as zombiescan asks)
# of (a) no socket: state mask 1, a state no socket has, so the kernel walks
# its whole connection table (every namespace's sockets: it is shared) and
# returns nothing; (b) every socket without tcp_info; (c) with it. Median of
# five; printed as milliseconds.
TABLE_FLOOR = """
import resource, socket, statistics, struct
def dump(states, ext):
    sock_id = bytes(48)
    body = struct.pack("=BBBB", socket.AF_INET, 0, 0, ext) + sock_id + struct.pack("=II", states, 0)
    msg = struct.pack("=IHHII", 16 + len(body), 18, 0x301, 1, 0) + body
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    s.send(msg)
    done = False
    while not done:
        data = s.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind == 2 and struct.unpack_from("=i", data, off + 16)[0] != 0:
                raise SystemExit("the kernel refused the dump")
            if kind in (2, 3) or length < 16:
                done = True
                break
            off += (length + 3) & ~3
    s.close()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) * 1000
every = (1 << 13) - 2
for states, ext in [(1, 0), (every, 0), (every, 2)]:
    print(round(statistics.median(dump(states, ext) for _ in range(5)), 1))
"""


def table_floor(ns):
    """The kernel's time (ms) to walk the socket table returning nothing,
    to hand over every socket, and every socket with its tcp_info; None
    where the kernel refused the request."""
    out = sh("ip", "netns", "exec", ns.name, "python3", "-c", TABLE_FLOOR, check=False).stdout.split()
    if len(out) != 3:
        return None
    walk, bare, info = (float(x) for x in out)
    return walk, bare, info


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def exporter_overhead(ns, binary, seconds, interval=15):
    """CPU share of one core, peak RSS, per-scrape scan times and series of
    `zombiescan serve` scraped every INTERVAL s."""
    p = subprocess.Popen(["ip", "netns", "exec", ns.name, binary, "serve"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if "serving" not in p.stderr.readline():
            raise RuntimeError("zombiescan serve did not start")
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(p.pid)
        scans, series, size = [], 0, 0
        n = seconds // interval
        for i in range(n):
            out = ns.exec("python3", "-c", SCRAPE).stdout.split()
            series, size = int(out[0]), int(out[2])
            scans.append(float(out[1]))
            if i + 1 < n:
                time.sleep(max(0.0, t0 + (i + 1) * interval - time.monotonic()))
        # The window ends where the next scrape would begin.
        time.sleep(max(0.0, t0 + n * interval - time.monotonic()))
        wall, cpu = time.monotonic() - t0, (cpu_ticks(p.pid) - c0) / hz
        with open(f"/proc/{p.pid}/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        return cpu, wall, hwm, scans, series, size
    finally:
        p.terminate()
        p.wait(timeout=30)


def run_once(ns, cmd):
    """Wall time (s) and peak RSS (KiB) of one run; output discarded.

    The RSS comes from /usr/bin/time, whose own small process forks the
    command: the rusage of a child forked from this Python process would
    carry Python's RSS across the exec.
    """
    full = ["ip", "netns", "exec", ns.name, "/usr/bin/time", "-f", "%M", *cmd]
    t0 = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    return wall, int(p.stderr.strip().splitlines()[-1])


UNIX_HOLDER = """
import os, socket, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(path)
l.listen(4096)
held = []
for _ in range(n // 2):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    held += [c, l.accept()[0]]
print('{"ready": true}', flush=True)
time.sleep(86400)
"""


def unix_sockets(ns, n):
    """N unix stream sockets beside the TCP ones: a listener and N/2
    connections to it, both ends held (N + 1 descriptors in one process)."""
    path = f"/tmp/zombiescan-bench-{os.getpid()}.sock"
    if os.path.exists(path):
        os.remove(path)
    p = subprocess.Popen(["ip", "netns", "exec", ns.name, "python3", "-c", UNIX_HOLDER, str(n), path],
                         stdout=subprocess.PIPE, text=True)
    ns.procs.append(p)
    if "ready" not in (p.stdout.readline() or ""):
        raise RuntimeError("the unix socket holder failed to start")
    return path


def measure(ns, binary, rounds, baseline=None):
    # A capture of the scene, for `analyze`: its memory should follow the
    # sockets, not the size of the text.
    capture = os.path.join("/tmp", f"zombiescan-bench-{os.getpid()}.zsc")
    if os.path.exists(capture):
        os.remove(capture)
    sh("ip", "netns", "exec", ns.name, binary, "capture", "-o", capture)
    cmds = {
        "zombiescan --json": [binary, "--json"],
        "zombiescan --no-processes --json": [binary, "--no-processes", "--json"],
        "zombiescan --port 30020 --json": [binary, "--port", str(FIRST_PORT), "--json"],
        "zombiescan analyze CAPTURE --json": [binary, "analyze", capture, "--json"],
    }
    if baseline:
        cmds["baseline --json"] = [baseline, "--json"]
        cmds["baseline --port 30020 --json"] = [baseline, "--port", str(FIRST_PORT), "--json"]
        cmds["baseline analyze CAPTURE --json"] = [baseline, "analyze", capture, "--json"]
    cmds.update({
        "ss -tani": ["ss", "-tani"],
        "ss -tanpi": ["ss", "-tanpi"],
        "ss -tanp": ["ss", "-tanp"],
        "ss -tan": ["ss", "-tan"],
    })
    floor = build_floor()
    if floor:
        cmds["floor: /proc/*/fd walk (C, one core)"] = [floor]
    times = {k: [] for k in cmds}
    rss = {k: 0 for k in cmds}
    for k, c in cmds.items():  # warm the caches once
        run_once(ns, c)
    for _ in range(rounds):
        for k, c in cmds.items():
            wall, maxrss = run_once(ns, c)
            times[k].append(wall)
            rss[k] = max(rss[k], maxrss)
    size = os.path.getsize(capture)
    os.remove(capture)
    print(f"capture: {size / 1048576:.1f} MiB gzipped", flush=True)
    base = statistics.median(times["ss -tani"])
    rows = []
    for k in cmds:
        med = statistics.median(times[k])
        rows.append((k, med, med / base, rss[k], rss[k] / rss["ss -tani"]))
    return rows


def build_floor():
    """bench/floor.c built with cc: the /proc walk alone, the floor of an
    owner lookup through /proc; None without a C compiler."""
    out = os.path.join("/tmp", f"zombiescan-floor-{os.getpid()}")
    src = os.path.join(ROOT, "bench", "floor.c")
    for cc in ("cc", "gcc", "clang"):
        if sh(cc, "-O2", "-o", out, src, check=False).returncode == 0:
            return out
    return None


def recorder_overhead(ns, binary, seconds, interval=5):
    """CPU used by a recorder sampling every INTERVAL s, as a share of one core."""
    out = os.path.join("/tmp", f"zombiescan-bench-{os.getpid()}.ndjson")
    rows = []
    for extra in [[], ["--port", str(FIRST_PORT)]]:
        count = str(seconds // interval + 1)
        cmd = [binary, "--watch", f"{interval}s", "--count", count, "--record", out, *extra]
        full = ["ip", "netns", "exec", ns.name, "/usr/bin/time", "-f", "%U %S %e %M", *cmd]
        p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"recorder exited {p.returncode}: {p.stderr}")
        user, system, wall, rss = p.stderr.strip().splitlines()[-1].split()
        cpu = float(user) + float(system)
        with open(out) as f:
            samples = sum(1 for _ in f)
        os.remove(out)
        name = " ".join(["--watch", f"{interval}s", "--record", *extra])
        rows.append((name, samples, cpu, float(wall), int(rss)))
    return rows


def floor_line(n, floor, period):
    """What the kernel alone takes to hand over the table, and, for a
    PERIOD (s), the share of one core that is at every sample."""
    if floor is None:
        return f"{n} connections: the kernel's floor could not be measured (its dump request was refused)"
    walk, bare, info = floor
    line = (f"{n} connections, the kernel alone: {walk:.0f} ms to walk the socket table "
            f"returning nothing, {bare:.0f} ms to hand over every socket, {info:.0f} ms "
            f"with their tcp_info")
    if period:
        line += (f": {100 * info / (period * 1000):.2f}% of one core at a sample every "
                 f"{period} s, before zombiescan reads a byte")
    else:
        line += (f"; a `--port` scan walks it twice (its port's dump, and its neighbours': "
                 f"other ports' LISTEN, CLOSE_WAIT, FIN_WAIT2, SYN_SENT): {2 * walk:.0f} ms "
                 f"before a socket is handed over")
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[10000, 50000, 100000])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "zombiescan"))
    ap.add_argument("--recorder", action="store_true",
                    help="instead: the CPU share of a recorder sampling every 5 s")
    ap.add_argument("--seconds", type=int, default=300, help="how long the recorder or exporter runs")
    ap.add_argument("--exporter", action="store_true",
                    help="instead: the CPU share of zombiescan serve scraped every 15 s")
    ap.add_argument("--unix", type=int, default=0,
                    help="unix stream sockets beside the TCP ones (a listener and N/2 connections)")
    ap.add_argument("--baseline", help="another zombiescan binary, measured in the same alternation")
    ap.add_argument("--peers", type=int, default=5000,
                    help="with --exporter: distinct remote endpoints")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it creates a network namespace)")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("bench.py: /usr/bin/time missing: apt-get install time")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"bench.py: {args.bin} missing: cargo build --release first")
    procs = len([d for d in os.listdir("/proc") if d.isdigit()])
    what = (f"a recorder for {args.seconds} s" if args.recorder
            else f"zombiescan serve scraped every 15 s for {args.seconds} s" if args.exporter
            else f"zombiescan vs ss, median of {args.rounds} alternating runs")
    print(f"# {what}, {time.strftime('%Y-%m-%d')}, kernel {os.uname().release}, "
          f"{os.cpu_count()} cores, {procs} processes on the host\n")
    if args.exporter:
        print("| connections | peers | sockets | scrapes | CPU | wall | share of one core | "
              "first scan | later scans (median) | series | bytes | peak RSS |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    elif args.recorder:
        print("| connections | sockets | recorder | samples | CPU | wall | share of one core | peak RSS |")
        print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    else:
        print("| connections | sockets | command | median | × ss -tani | peak RSS | × ss -tani |")
        print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    derived = []
    for n in args.sizes:
        ns = Namespace(f"zs-bench-{os.getpid()}")
        peer = Namespace(f"zs-bench-{os.getpid()}-c") if args.recorder or args.exporter else None
        unix_path = None
        try:
            if args.exporter:
                _, peers, total = build_spread(ns, peer, n, args.peers)
                cpu, wall, hwm, scans, series, size = exporter_overhead(ns, args.bin, args.seconds)
                later = statistics.median(scans[1:]) if len(scans) > 1 else float("nan")
                print(f"| {n} | {peers} | {total} | {len(scans)} | {cpu:.2f} s | {wall:.1f} s | "
                      f"{100 * cpu / wall:.2f}% | {scans[0] * 1000:.0f} ms | {later * 1000:.0f} ms | "
                      f"{series} | {size} | {hwm / 1024:.1f} MiB |", flush=True)
                derived.append(floor_line(n, table_floor(ns), 15))
                continue
            if args.recorder:
                _, _, total = build(ns, n, peer)
                for name, samples, cpu, wall, rss in recorder_overhead(ns, args.bin, args.seconds):
                    print(f"| {n} | {total} | `{name}` | {samples} | {cpu:.2f} s | {wall:.1f} s | "
                          f"{100 * cpu / wall:.2f}% | {rss / 1024:.1f} MiB |", flush=True)
                derived.append(floor_line(n, table_floor(ns), 5))
                continue
            est, cw, total = build(ns, n)
            unix_path = unix_sockets(ns, args.unix) if args.unix else None
            total += args.unix
            rows = measure(ns, args.bin, args.rounds, args.baseline)
            for name, med, ratio, rss, rss_ratio in rows:
                print(f"| {n} | {total} | `{name}` | {med * 1000:.1f} ms | {ratio:.2f} | "
                      f"{rss / 1024:.1f} MiB | {rss_ratio:.2f} |", flush=True)
            med = {name: m for name, m, _, _, _ in rows}
            full, bare = med["zombiescan --json"], med["zombiescan --no-processes --json"]
            derived.append(f"{n} connections: the owners add {100 * (full - bare) / bare:.0f}% to a "
                           f"scan without them; `--port 30020` takes "
                           f"{med['zombiescan --port 30020 --json'] / full:.2f} of a full scan")
            derived.append(floor_line(n, table_floor(ns), None))
        finally:
            ns.close()
            if unix_path and os.path.exists(unix_path):
                os.remove(unix_path)
            if peer:
                peer.close()
    for line in derived:
        print(f"\n{line}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
