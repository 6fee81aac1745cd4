//! What each finding says and what to do about it, tailored to the server
//! that owns the sockets. Defaults quoted here are the servers' documented
//! ones (uvicorn 0.3x, gunicorn 23, nginx 1.2x): advice that is wrong is
//! worse than none.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::model::{Direction, Process, Snapshot};

/// Servers whose fixes zombiescan knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Uvicorn,
    Gunicorn,
    Nginx,
    Node,
    Java,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Uvicorn => "uvicorn",
            Server::Gunicorn => "gunicorn",
            Server::Nginx => "nginx",
            Server::Node => "node",
            Server::Java => "java",
        }
    }

    /// Recognises a server by its comm or command line. gunicorn wins over
    /// uvicorn: `gunicorn -k uvicorn.workers.UvicornWorker` is gunicorn.
    pub fn detect(p: &Process) -> Option<Server> {
        let words: Vec<&[u8]> = p
            .cmdline
            .split(|&b| b == b' ')
            .map(|w| w.rsplit(|&b| b == b'/').next().unwrap_or(w))
            .collect();
        let has = |name: &[u8]| {
            p.comm == name
                || words
                    .iter()
                    .any(|w| *w == name || w.strip_suffix(b":") == Some(name))
        };
        if has(b"gunicorn") {
            Some(Server::Gunicorn)
        } else if has(b"uvicorn") {
            Some(Server::Uvicorn)
        } else if p.comm == b"nginx" || words.first().is_some_and(|w| *w == b"nginx:") {
            Some(Server::Nginx)
        } else if p.comm == b"node" || p.comm == b"nodejs" {
            Some(Server::Node)
        } else if p.comm == b"java" {
            Some(Server::Java)
        } else {
            None
        }
    }
}

/// Who and where a finding is about, in words.
pub struct Ctx {
    pub server: Option<Server>,
    /// "uvicorn (pids 12, 13)", "no process (orphaned sockets)".
    pub who: String,
    /// "port 30020", "10.0.0.5:5432".
    pub place: String,
    pub dir: Direction,
    /// `--reload` on a uvicorn command line.
    pub reload: bool,
}

impl Ctx {
    pub fn new(
        snap: &Snapshot,
        pids: &[u32],
        dir: Direction,
        remote: Option<IpAddr>,
        port: u16,
    ) -> Ctx {
        let procs: Vec<&Process> = pids.iter().filter_map(|p| snap.processes.get(p)).collect();
        let server = procs.iter().find_map(|p| Server::detect(p));
        let reload = procs
            .iter()
            .any(|p| p.cmdline.split(|&b| b == b' ').any(|w| w == b"--reload"));
        let name = procs
            .first()
            .map(|p| String::from_utf8_lossy(&p.comm).into_owned())
            .unwrap_or_default();
        let name = match server {
            Some(s) if s.name() != name => format!("{name} ({})", s.name()),
            _ => name,
        };
        let list = |v: &[u32]| {
            let mut s: Vec<String> = v.iter().take(5).map(u32::to_string).collect();
            if v.len() > 5 {
                s.push(format!("and {} more", v.len() - 5));
            }
            s.join(", ")
        };
        let who = match pids.len() {
            0 => "no process (the sockets are orphaned)".to_string(),
            1 => format!("{name} (pid {})", pids[0]),
            _ => format!("{name} (pids {})", list(pids)),
        };
        let place = match remote {
            Some(ip) => SocketAddr::new(ip, port).to_string(),
            None => format!("port {port}"),
        };
        Ctx {
            server,
            who,
            place,
            dir,
            reload,
        }
    }

    fn conns(&self, n: u32) -> String {
        let c = if n == 1 { "connection" } else { "connections" };
        match self.dir {
            Direction::Inbound => format!("{n} {c} on {}", self.place),
            Direction::Outbound => format!("{n} {c} to {}", self.place),
        }
    }
}

/// The singular or the plural form of a verb for `n` subjects.
fn verb(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn ago(age: Option<&str>) -> String {
    age.map_or(String::new(), |a| format!(" (the oldest {a} ago)"))
}

const APP_TIMEOUTS: &str = "Bound every call a handler makes: a database statement_timeout, \
HTTP client timeouts (httpx, requests), pool checkout timeouts.";

const RELOAD: &str = " --reload is on: it is for development only; do not run it in production.";

pub fn close_wait(c: &Ctx, n: u32, age: Option<&str>) -> (String, String) {
    let explanation = format!(
        "{} {} in CLOSE_WAIT{}: the peer closed its side and {} never closed the socket. \
         The kernel never times CLOSE_WAIT out; each one holds a file descriptor until the process closes it or exits.",
        c.conns(n),
        verb(n, "is", "are"),
        ago(age),
        c.who
    );
    let mut fix = match (c.dir, c.server) {
        (Direction::Outbound, _) => format!(
            "The server at {} closed these connections (an idle timeout) and the application never closed its side: \
             a connection pool that keeps dead connections, or HTTP responses never closed. Enable pool_pre_ping, set \
             pool_recycle shorter than the server's idle timeout, close responses (context managers).",
            c.place
        ),
        (_, Some(Server::Uvicorn)) => format!(
            "uvicorn: requests whose handler never finished (stuck on a slow call, or a streaming response that never ends); \
             the client or load balancer gave up and closed. uvicorn has no per-request timeout (--timeout-keep-alive only \
             closes idle connections between requests). {APP_TIMEOUTS} Under gunicorn with uvicorn workers, --timeout \
             restarts a worker silent that long."
        ),
        (_, Some(Server::Gunicorn)) => format!(
            "gunicorn: workers stuck in handlers while clients gave up. --timeout (default 30 s) restarts a sync worker \
             silent that long; it does not apply to a worker busy in a thread or an async loop. {APP_TIMEOUTS}"
        ),
        (_, Some(Server::Nginx)) => {
            "nginx: upstream or client connections left open; check proxy_read_timeout and \
             keepalive_timeout, and that upstream responses complete."
                .to_string()
        }
        _ => format!(
            "Find the code path that does not close the connection: a handler that never returns, or a socket never \
             closed on an error path. {APP_TIMEOUTS}"
        ),
    };
    fix.push_str(" Restarting the process frees them now; it does not fix the leak.");
    if c.reload {
        fix.push_str(RELOAD);
    }
    (explanation, fix)
}

pub fn half_open(
    c: &Ctx,
    n: u32,
    dead: &BTreeMap<&'static str, u32>,
    max_retrans: u8,
    age: Option<&str>,
    retries2: Option<u64>,
) -> (String, String) {
    let get = |k| dead.get(k).copied().unwrap_or(0);
    let mut why = Vec::new();
    if get("retransmitting") > 0 {
        why.push(format!(
            "{} have unacknowledged data retransmitted up to {max_retrans} times",
            get("retransmitting")
        ));
    }
    if get("keepalive_unanswered") > 0 {
        why.push(format!(
            "{} get no answer to keepalive probes",
            get("keepalive_unanswered")
        ));
    }
    if get("syn_sent_unanswered") > 0 {
        why.push(format!(
            "{} keep retrying a SYN that nobody answers",
            get("syn_sent_unanswered")
        ));
    }
    let last = age.map_or(String::new(), |a| {
        format!("; the peer last acknowledged anything {a} ago")
    });
    let explanation = format!(
        "{}, held by {}, {} dead: {}{last}. The peer is probably gone (host down, network path cut, NAT or firewall \
         entry expired) and these sockets tie up workers and descriptors until the kernel gives up.",
        c.conns(n),
        c.who,
        verb(n, "looks", "look"),
        why.join("; ")
    );
    let retries = retries2.map_or("net.ipv4.tcp_retries2".to_string(), |v| {
        format!("net.ipv4.tcp_retries2 = {v}")
    });
    let mut fix = format!(
        "With data in flight the kernel gives up only after {retries} retransmissions (the default 15 is about 15 minutes). \
         Bound it per socket with TCP_USER_TIMEOUT, or lower tcp_retries2 host-wide (8 is about 100 s). In the \
         application, give every client read and connect timeouts so the request fails fast."
    );
    if get("syn_sent_unanswered") > 0 {
        fix.push_str(&format!(
            " For the SYNs: check that {} is up and reachable, and use a connect timeout.",
            c.place
        ));
    }
    (explanation, fix)
}

pub fn peer_not_reading(c: &Ctx, n: u32, send_q: u64, age: Option<&str>) -> (String, String) {
    let explanation = format!(
        "{} {} {send_q} bytes waiting to be sent and the peer advertises a zero window{}: the other side is not \
         reading (a stalled consumer, a suspended client), so the kernel only probes the window. {} stays tied up \
         writing.",
        c.conns(n),
        verb(n, "has", "have"),
        age.map_or(String::new(), |a| format!(" (nothing sent for {a})")),
        c.who
    );
    let fix = match c.server {
        Some(Server::Nginx) => "nginx: send_timeout (default 60 s) closes a client that reads nothing between two \
             writes; lower it if these clients hold connections open."
            .to_string(),
        Some(Server::Uvicorn) | Some(Server::Gunicorn) => format!(
            "{} has no write timeout for slow readers: put it behind a proxy that buffers responses and bounds slow \
             clients (nginx: send_timeout, default 60 s), or bound the write in the application (asyncio.wait_for on \
             drain(), SO_SNDTIMEO).",
            c.server.map_or("", Server::name)
        ),
        _ => "Bound how long a write may block: SO_SNDTIMEO or an application write timeout; in front of the service, a \
             proxy timeout for slow clients (nginx: send_timeout). If the peer is yours, find why it stopped reading."
            .to_string(),
    };
    (explanation, fix)
}

pub fn app_not_reading(c: &Ctx, n: u32, recv_q: u64, age: Option<&str>) -> (String, String) {
    let explanation = format!(
        "{} {} {recv_q} bytes received and not read by {}{}. Requests arrived and no worker reads them: the workers \
         are blocked (a slow dependency, a blocking call in an async handler) or all busy.",
        c.conns(n),
        verb(n, "holds", "hold"),
        c.who,
        age.map_or(String::new(), |a| format!("; the oldest has waited {a}"))
    );
    let mut fix = match c.server {
        Some(Server::Uvicorn) => format!(
            "uvicorn runs one event loop per worker: a blocking call (a sync database driver, requests, time.sleep) in an \
             async def handler stalls every connection of that worker. Move blocking work to def handlers or a thread \
             pool, run more --workers, and bound slow calls. --limit-concurrency answers 503 past a bound instead of \
             queueing. {APP_TIMEOUTS}"
        ),
        Some(Server::Gunicorn) => format!(
            "Every gunicorn worker is busy: raise --workers or --threads, or use an async worker class; --timeout \
             (default 30 s) restarts a sync worker stuck that long. {APP_TIMEOUTS}"
        ),
        Some(Server::Node) => format!(
            "node: the event loop is blocked (synchronous work in a handler). Move CPU-bound or sync I/O off the loop. \
             {APP_TIMEOUTS}"
        ),
        _ => format!(
            "Find what the workers are waiting on (py-spy dump, jstack, gdb) and bound it. {APP_TIMEOUTS}"
        ),
    };
    if c.reload {
        fix.push_str(RELOAD);
    }
    (explanation, fix)
}

pub fn idle_no_keepalive(
    c: &Ctx,
    n: u32,
    idle_s: u64,
    age: Option<&str>,
    ka_time: Option<u64>,
) -> (String, String) {
    let explanation = format!(
        "{}, held by {}, carried no data for over {idle_s} s{} and {} no keepalive timer: if the peer vanished (host \
         crash, a NAT or firewall dropping the idle flow) such a socket is never reclaimed.",
        c.conns(n),
        c.who,
        ago(age).replace(" ago", " idle"),
        verb(n, "has", "have")
    );
    let ka = ka_time.map_or("net.ipv4.tcp_keepalive_time".to_string(), |v| {
        format!("net.ipv4.tcp_keepalive_time = {v} s")
    });
    let mut fix = format!(
        "Turn on SO_KEEPALIVE for these sockets (the kernel then probes after {ka}; TCP_KEEPIDLE sets it per socket), or \
         close idle connections in the application (pool_recycle, an idle timeout shorter than any NAT or firewall idle timeout)."
    );
    match (c.dir, c.server) {
        (Direction::Inbound, Some(Server::Uvicorn)) => fix.push_str(
            " uvicorn: --timeout-keep-alive (default 5 s) closes keep-alive connections idle between requests; behind a \
             load balancer keep it longer than the balancer's idle timeout (over 60 s behind a default AWS ALB), or the \
             balancer reuses connections uvicorn is closing and clients get 502s. A connection idle this long with a \
             request in progress is a stuck handler.",
        ),
        (Direction::Inbound, Some(Server::Gunicorn)) => fix.push_str(
            " gunicorn: --keep-alive (default 2 s) closes idle keep-alive connections (the sync worker keeps none \
             alive); behind a load balancer keep it longer than the balancer's idle timeout.",
        ),
        _ => {}
    }
    (explanation, fix)
}

pub fn fin_wait2(
    c: &Ctx,
    n: u32,
    orphan: bool,
    age: Option<&str>,
    fin_timeout: Option<u64>,
) -> (String, String) {
    let ft = fin_timeout.map_or("net.ipv4.tcp_fin_timeout".to_string(), |v| {
        format!("net.ipv4.tcp_fin_timeout = {v} s")
    });
    if orphan {
        (
            format!(
                "{} {} closed here and {} for the peer's FIN (orphaned FIN_WAIT2, freed after {ft}): the peer does \
                 not close its side.",
                c.conns(n),
                verb(n, "was", "were"),
                verb(n, "waits", "wait")
            ),
            format!(
                "Nothing leaks here; the peer {} holds its side open, likely in CLOSE_WAIT: run zombiescan there. \
                 Lowering {ft} frees these sooner.",
                c.place
            ),
        )
    } else {
        (
            format!(
                "{} {} in FIN_WAIT2 held by {}{}: it shut down its sending side and the peer never closed its own. A \
                 FIN_WAIT2 socket still held by its process never times out ({ft} applies only after close()).",
                c.conns(n),
                verb(n, "is", "are"),
                c.who,
                ago(age)
            ),
            "Close the socket after shutdown(), or put a read timeout on the wait for the peer's FIN. The peer is \
             holding its side open (CLOSE_WAIT there): run zombiescan on it."
                .to_string(),
        )
    }
}

pub fn accept_queue_full(
    c: &Ctx,
    queue: u64,
    backlog: Option<u64>,
    overflows: i64,
    somaxconn: Option<u64>,
) -> (String, String) {
    let limit = backlog.map_or("a limit /proc does not show".to_string(), |b| {
        format!("a limit of {b}")
    });
    let explanation = format!(
        "The accept queue of {} holds {queue} connections for {limit}: the kernel completed handshakes that {} does not \
         accept. When it is full new connections are dropped (ListenOverflows {overflows} since boot).",
        c.place, c.who
    );
    let smc = somaxconn.map_or("net.core.somaxconn".to_string(), |v| {
        format!("net.core.somaxconn = {v}")
    });
    let server = match c.server {
        Some(Server::Uvicorn) => " uvicorn: --backlog (default 2048).",
        Some(Server::Gunicorn) => " gunicorn: --backlog (default 2048).",
        Some(Server::Nginx) => " nginx: the backlog= parameter of listen (default 511).",
        _ => "",
    };
    let fix = format!(
        "The application does not call accept() fast enough: its workers are blocked or all busy (see app_not_reading). \
         A longer queue only buys time: the limit is min(backlog, {smc}).{server}"
    );
    (explanation, fix)
}

pub fn syn_backlog(
    c: &Ctx,
    n: u64,
    limit: u64,
    max_syn: Option<u64>,
    syncookies: Option<u64>,
) -> (String, String) {
    (
        format!(
            "{n} handshakes on {} are half done (SYN_RECV) for a limit of {limit}: clients send SYN and do not complete \
             (a SYN flood, lost ACKs), or the accept queue behind them is full.",
            c.place
        ),
        format!(
            "Keep net.ipv4.tcp_syncookies = 1 (now {}) so the host keeps serving under a SYN flood; raise \
             net.ipv4.tcp_max_syn_backlog (now {}) and the listen backlog; if the accept queue is full, see \
             accept_queue_full.",
            syncookies.map_or("unknown".to_string(), |v| v.to_string()),
            max_syn.map_or("unknown".to_string(), |v| v.to_string())
        ),
    )
}

pub fn fd_process(
    p: &Process,
    server: Option<Server>,
    limit: u64,
    pct: &str,
    close_wait: u32,
) -> (String, String) {
    let name = String::from_utf8_lossy(&p.comm);
    let explanation = format!(
        "{name} (pid {}) has {} of its {limit} file descriptors open ({pct}): at the limit accept() fails with EMFILE and \
         the server stops taking connections.",
        p.pid, p.fds_open
    );
    let leak = if close_wait > 0 {
        format!(
            " {close_wait} of its sockets are in CLOSE_WAIT: that leak is eating descriptors (see close_wait)."
        )
    } else {
        String::new()
    };
    let fix = format!(
        "If the count keeps rising, something leaks descriptors.{leak} To raise the soft limit (RLIMIT_NOFILE): LimitNOFILE= \
         in its systemd unit, ulimit -n in its start script, docker run --ulimit nofile=N:N; check with prlimit --pid {}.{}",
        p.pid,
        match server {
            Some(Server::Nginx) => " nginx: worker_rlimit_nofile, and worker_connections below it.",
            _ => "",
        }
    );
    (explanation, fix)
}

pub fn fd_host(used: u64, max: u64, pct: &str) -> (String, String) {
    (
        format!("The host has {used} of fs.file-max {max} file handles allocated ({pct}): past it every process fails to open files and sockets (ENFILE)."),
        "Find the process holding the most descriptors (zombiescan's FDS column, or ls /proc/*/fd | wc -l), and raise \
         fs.file-max (sysctl -w fs.file-max=N, persisted in /etc/sysctl.d/)."
            .to_string(),
    )
}

pub fn ephemeral(
    n: u64,
    time_wait: u32,
    local: IpAddr,
    remote: SocketAddr,
    lo: u16,
    hi: u16,
    pct: &str,
) -> (String, String) {
    (
        format!(
            "{n} sockets from {local} to {remote} ({time_wait} of them in TIME_WAIT) use {pct} of the local port range \
             {lo}-{hi}: when it is used up, new connections to {remote} fail with EADDRNOTAVAIL."
        ),
        format!(
            "Reuse connections (a connection pool, HTTP keep-alive) instead of opening one per request. Widen \
             net.ipv4.ip_local_port_range (now {lo} {hi}); net.ipv4.tcp_tw_reuse = 1 lets new outbound connections reuse \
             ports in TIME_WAIT."
        ),
    )
}

pub fn time_wait_pressure(n: u64, max: u64, pct: &str) -> (String, String) {
    (
        format!(
            "{n} TIME_WAIT sockets for net.ipv4.tcp_max_tw_buckets = {max} ({pct}): past the limit the kernel drops \
             TIME_WAIT state early (\"time wait bucket table overflow\")."
        ),
        "TIME_WAIT stays on the side that closes first: reuse connections (keep-alive, pools) rather than opening one per \
         request; for outbound connections net.ipv4.tcp_tw_reuse = 1 allows reusing them."
            .to_string(),
    )
}

pub fn orphan_pressure(n: u64, max: u64, pct: &str, fin_timeout: Option<u64>) -> (String, String) {
    (
        format!(
            "{n} orphaned sockets (closed by their process, still in the kernel) for net.ipv4.tcp_max_orphans = {max} \
             ({pct}): past the limit the kernel resets connections (\"too many orphaned sockets\")."
        ),
        format!(
            "Orphans wait on peers that do not answer (FIN_WAIT1, LAST_ACK) or do not close (FIN_WAIT2): lower \
             net.ipv4.tcp_fin_timeout (now {}) to free FIN_WAIT2 sooner, and find the peers that do not close.",
            fin_timeout.map_or("unknown".to_string(), |v| format!("{v} s"))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::testing::process;

    #[test]
    fn servers_by_comm_and_command_line() {
        let d = |comm, cmd| Server::detect(&process(1, comm, cmd, 1, None));
        assert_eq!(
            d("python3", "/usr/bin/python3 -m uvicorn app:app"),
            Some(Server::Uvicorn)
        );
        assert_eq!(
            d("uvicorn", "/venv/bin/uvicorn app:app --port 30020"),
            Some(Server::Uvicorn)
        );
        assert_eq!(
            d(
                "gunicorn",
                "/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker app:app"
            ),
            Some(Server::Gunicorn)
        );
        assert_eq!(
            d("python3", "gunicorn: worker [app:app]"),
            Some(Server::Gunicorn)
        );
        assert_eq!(d("nginx", "nginx: worker process"), Some(Server::Nginx));
        assert_eq!(d("node", "node server.js"), Some(Server::Node));
        assert_eq!(d("java", "java -jar app.jar"), Some(Server::Java));
        assert_eq!(d("python3", "python3 uvicorn_helper.py"), None);
    }
}
