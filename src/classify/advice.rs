//! What each finding says and what to do about it, for the server in front
//! of the reader. Advice that is wrong is worse than none, and what a server
//! does changes with its releases, so the advice is data: [`ADVICE`] holds
//! one row per server and finding (the cause in that server's terms, the fix
//! naming its settings, and where each claim was checked), [`SETTINGS`] the
//! settings the rows cite, with their defaults and sources. The classifier
//! picks the row for the process that holds the sockets and fills each
//! `{--setting}` with the value its command line states, or the default.
//!
//! The explanations (how many, how old, who) are built here from the
//! figures; only the server-specific sentences live in the table.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::Kind;
use crate::model::{Direction, Process, Snapshot};

/// Servers whose behaviour the advice knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Uvicorn,
    Gunicorn,
    Nginx,
    Node,
    Java,
    /// Docker's userland proxy: it forwards a published port to a
    /// container and holds both ends of every forwarded connection.
    DockerProxy,
    Postgres,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Uvicorn => "uvicorn",
            Server::Gunicorn => "gunicorn",
            Server::Nginx => "nginx",
            Server::Node => "node",
            Server::Java => "java",
            Server::DockerProxy => "docker-proxy",
            Server::Postgres => "postgres",
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
        } else if p.comm == b"docker-proxy" {
            Some(Server::DockerProxy)
        } else if p.comm == b"postgres" || p.comm == b"postmaster" {
            Some(Server::Postgres)
        } else if p.comm == b"node" || p.comm == b"nodejs" {
            Some(Server::Node)
        } else if p.comm == b"java" {
            Some(Server::Java)
        } else {
            None
        }
    }
}

/// A setting a row of advice cites as `{name}`.
pub struct Setting {
    pub server: Server,
    /// As the advice writes it: `--backlog`.
    pub name: &'static str,
    /// Other spellings on a command line: `-w` for `--workers`.
    pub aliases: &'static [&'static str],
    /// The default, with its unit; `None` when unset means unbounded.
    pub default: Option<&'static str>,
    pub checked: &'static str,
}

const UVICORN_HELP: &str = "uvicorn 0.34.0 --help; uvicorn/config.py Config.__init__";
const GUNICORN_HELP: &str = "gunicorn 23.0.0 --help (docs.gunicorn.org/en/stable/settings.html)";

pub const SETTINGS: &[Setting] = &[
    Setting {
        server: Server::Uvicorn,
        name: "--backlog",
        aliases: &[],
        default: Some("2048"),
        checked: UVICORN_HELP,
    },
    Setting {
        server: Server::Uvicorn,
        name: "--timeout-keep-alive",
        aliases: &[],
        default: Some("5 s"),
        checked: UVICORN_HELP,
    },
    Setting {
        server: Server::Uvicorn,
        name: "--limit-concurrency",
        aliases: &[],
        default: None,
        checked: UVICORN_HELP,
    },
    Setting {
        server: Server::Uvicorn,
        name: "--workers",
        aliases: &[],
        default: Some("1"),
        checked: UVICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--workers",
        aliases: &["-w"],
        default: Some("1"),
        checked: GUNICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--threads",
        aliases: &[],
        default: Some("1"),
        checked: GUNICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--worker-class",
        aliases: &["-k"],
        default: Some("sync"),
        checked: GUNICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--timeout",
        aliases: &["-t"],
        default: Some("30 s"),
        checked: GUNICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--backlog",
        aliases: &[],
        default: Some("2048"),
        checked: GUNICORN_HELP,
    },
    Setting {
        server: Server::Gunicorn,
        name: "--keep-alive",
        aliases: &[],
        default: Some("2 s"),
        checked: GUNICORN_HELP,
    },
];

/// Whose behaviour a row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The process holding the sockets runs this server.
    Holder(Server),
    /// The remote end of outbound sockets runs this server.
    Peer(Server),
    /// Any process: the generic advice.
    Any,
}

/// One server's advice for one finding.
pub struct Row {
    pub who: Who,
    pub kind: Kind,
    /// `None`: both directions.
    pub dir: Option<Direction>,
    /// Why it happens, in that server's terms: a sentence or two.
    pub cause: &'static str,
    /// What to do; `{--name}` is one of the server's [`SETTINGS`].
    pub fix: &'static str,
    /// Where each claim was checked.
    pub checked: &'static str,
}

const APP_TIMEOUTS: &str = "Bound every call a handler makes: a database statement_timeout, \
HTTP client timeouts (httpx, requests), pool checkout timeouts.";

use Direction::{Inbound, Outbound};
use Kind::*;
use Server::*;

pub const ADVICE: &[Row] = &[
    // close_wait
    Row {
        who: Who::Holder(Uvicorn),
        kind: CloseWait,
        dir: Some(Inbound),
        cause: "uvicorn runs on asyncio, which closes a connection as soon as it reads the client's FIN, even \
                while the handler awaits: a CLOSE_WAIT that stays on a uvicorn socket means that worker's event \
                loop is blocked, by a synchronous call (time.sleep, requests, a sync database driver) inside an \
                async def endpoint.",
        fix: "Find the blocking call (py-spy dump --pid PID shows where the loop is stuck) and take it off the \
              loop: run it in a thread (asyncio.to_thread, starlette's run_in_threadpool), declare the endpoint \
              with def so the framework runs it in a thread pool, or use an async driver. {--workers} more \
              workers spread the load, but each blocked loop still stalls every connection it holds.",
        checked: "uvicorn/protocols/http/h11_impl.py and httptools_impl.py: eof_received() returns None, so asyncio \
                  closes the transport on EOF; connection_lost() closes it",
    },
    Row {
        who: Who::Holder(Gunicorn),
        kind: CloseWait,
        dir: Some(Inbound),
        cause: "Every gunicorn worker was busy in a handler ({--workers} workers, {--threads} threads each, \
                {--worker-class} worker class) and the clients gave up waiting and closed.",
        fix: "{--timeout} restarts a sync worker silent that long; it does not bound a request served by a thread \
              or an async worker. Bound what the handlers wait on, and give gunicorn the concurrency its load \
              needs: more {--workers}, {--threads} (gthread), or an async {--worker-class}. {APP_TIMEOUTS}",
        checked: GUNICORN_HELP,
    },
    Row {
        who: Who::Holder(Nginx),
        kind: CloseWait,
        dir: Some(Inbound),
        cause: "nginx keeps a connection its client closed while it still waits for the upstream's response \
                when proxy_ignore_client_abort is on (with the default, off, it closes both at once and logs 499), \
                or while its worker is blocked.",
        fix: "Look at the upstream nginx proxies to (the outbound connections of these pids) and why it is slow; \
              proxy_read_timeout (default 60 s) bounds how long nginx waits for it, and proxy_ignore_client_abort \
              off (the default) lets a client that leaves free its connection at once.",
        checked: "nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ignore_client_abort and \
                  #proxy_read_timeout; seen live: off, nginx closes at the client's FIN; on, CLOSE_WAIT until the \
                  upstream answers or times out",
    },
    Row {
        who: Who::Holder(DockerProxy),
        kind: CloseWait,
        dir: None,
        cause: "docker-proxy is Docker's userland proxy: it copies each connection to a published port on to the \
                container and closes a client's side only when the container's side ends. These are a consequence: \
                the server in the container does not answer.",
        fix: "Diagnose the container's server (its part of this report, or zombiescan --netns with the container's \
              pid). \"userland-proxy\": false in /etc/docker/daemon.json (then restart dockerd) removes this hop: \
              published ports are then forwarded by the kernel's NAT rules.",
        checked: "docs.docker.com/engine/network/packet-filtering-firewalls/ (userland-proxy); dockerd --help: \
                  --userland-proxy (default true)",
    },
    Row {
        who: Who::Peer(Postgres),
        kind: CloseWait,
        dir: Some(Outbound),
        cause: "PostgreSQL ended these connections (idle_session_timeout, a restart, pg_terminate_backend) and \
                the client's pool kept them without noticing.",
        fix: "With SQLAlchemy: pool_pre_ping=True tests a connection at checkout, pool_recycle=N replaces \
              connections older than N s (shorter than any server or firewall idle timeout). Other pools: a \
              health check at checkout and a maximum connection lifetime.",
        checked: "docs.sqlalchemy.org/en/20/core/pooling.html (pool_pre_ping, pool_recycle)",
    },
    Row {
        who: Who::Any,
        kind: CloseWait,
        dir: Some(Outbound),
        cause: "The server at the other end closed these connections (an idle timeout, a restart) and the \
                application never closed its side: a connection pool that keeps dead connections, or responses \
                never closed.",
        fix: "Test pooled connections at checkout and give them a maximum lifetime shorter than the server's idle \
              timeout (SQLAlchemy: pool_pre_ping, pool_recycle); close HTTP responses (context managers).",
        checked: "docs.sqlalchemy.org/en/20/core/pooling.html",
    },
    Row {
        who: Who::Any,
        kind: CloseWait,
        dir: Some(Inbound),
        cause: "The application never called close() on them: a handler that never returns, or a socket left \
                open on an error path.",
        fix: "Find the code path that does not close the connection. {APP_TIMEOUTS}",
        checked: "tcp(7): CLOSE_WAIT ends only when the socket is closed",
    },
    // half_open
    Row {
        who: Who::Holder(DockerProxy),
        kind: HalfOpen,
        dir: Some(Outbound),
        cause: "docker-proxy opens one connection to the container per client; these do not get through.",
        fix: "Diagnose the container's server (its accept queue, its event loop). \"userland-proxy\": false in \
              /etc/docker/daemon.json removes this hop.",
        checked: "docs.docker.com/engine/network/packet-filtering-firewalls/",
    },
    Row {
        who: Who::Peer(Postgres),
        kind: HalfOpen,
        dir: Some(Outbound),
        cause: "The database stopped acknowledging: the host is down, or the path to it was cut.",
        fix: "libpq: tcp_user_timeout=N (ms) ends a connection whose data stays unacknowledged that long; \
              keepalives=1 (its default) with keepalives_idle, keepalives_interval and keepalives_count finds an \
              idle dead server. A statement_timeout does not help: the server never got the query.",
        checked: "postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS",
    },
    Row {
        who: Who::Any,
        kind: HalfOpen,
        dir: None,
        cause: "The peer is probably gone (host down, network path cut, NAT or firewall entry expired).",
        fix: "Give every client read and connect timeouts so a request fails fast; TCP_USER_TIMEOUT bounds \
              unacknowledged data per socket.",
        checked: "tcp(7): TCP_USER_TIMEOUT, tcp_retries2",
    },
    // peer_not_reading
    Row {
        who: Who::Holder(Uvicorn),
        kind: PeerNotReading,
        dir: Some(Inbound),
        cause: "uvicorn writes through asyncio: a client that reads nothing leaves the response in the kernel's \
                and asyncio's buffers while the handler waits on write flow control.",
        fix: "uvicorn has no send timeout ({--timeout-keep-alive} applies only between requests, and SO_SNDTIMEO \
              does nothing on non-blocking sockets). Bound it in front (a proxy that buffers responses and times \
              out slow clients: nginx send_timeout, default 60 s) or in the application (a timeout around a \
              streaming response).",
        checked: "uvicorn docs/server-behavior.md (write flow control); socket(7) SO_SNDTIMEO applies to blocking \
                  calls; nginx.org/en/docs/http/ngx_http_core_module.html#send_timeout",
    },
    Row {
        who: Who::Holder(Gunicorn),
        kind: PeerNotReading,
        dir: Some(Inbound),
        cause: "A gunicorn worker writing a response blocks for as long as the client does not read.",
        fix: "{--timeout} restarts a sync worker that stays silent that long, which ends these writes; behind a \
              buffering proxy (nginx: proxy_buffering on, send_timeout default 60 s) slow clients never reach \
              the workers.",
        checked: "gunicorn docs design.html (sync workers behind a buffering proxy); nginx send_timeout",
    },
    Row {
        who: Who::Holder(Nginx),
        kind: PeerNotReading,
        dir: Some(Inbound),
        cause: "The clients stopped reading what nginx sends them.",
        fix: "send_timeout (default 60 s) closes a client that reads nothing between two writes; lower it if these \
              clients hold connections open.",
        checked: "nginx.org/en/docs/http/ngx_http_core_module.html#send_timeout",
    },
    Row {
        who: Who::Any,
        kind: PeerNotReading,
        dir: None,
        cause: "The other side is not reading (a stalled consumer, a suspended client).",
        fix: "Bound how long a write may wait: an application write timeout, or a proxy timeout for slow clients \
              (nginx: send_timeout). If the peer is yours, find why it stopped reading.",
        checked: "tcp(7) zero window probes",
    },
    // app_not_reading
    Row {
        who: Who::Holder(Uvicorn),
        kind: AppNotReading,
        dir: Some(Inbound),
        cause: "uvicorn runs one event loop per worker: a blocking call (a sync database driver, requests, \
                time.sleep) in an async def endpoint stalls every connection of that worker.",
        fix: "Take blocking work off the loop (def endpoints or a thread pool, async drivers) and bound slow \
              calls; {--workers} spreads the load, {--limit-concurrency} answers 503 past a bound instead of \
              queueing. {APP_TIMEOUTS}",
        checked: UVICORN_HELP,
    },
    Row {
        who: Who::Holder(Gunicorn),
        kind: AppNotReading,
        dir: Some(Inbound),
        cause: "Every gunicorn worker is busy ({--workers} workers, {--threads} threads each, {--worker-class} \
                worker class).",
        fix: "Raise {--workers} or {--threads}, or use an async {--worker-class}; {--timeout} restarts a sync \
              worker stuck that long. {APP_TIMEOUTS}",
        checked: GUNICORN_HELP,
    },
    Row {
        who: Who::Holder(Node),
        kind: AppNotReading,
        dir: Some(Inbound),
        cause: "The node event loop is blocked (synchronous work in a handler).",
        fix: "Move CPU-bound or synchronous I/O off the loop (worker threads, async APIs). {APP_TIMEOUTS}",
        checked: "nodejs.org/en/learn/asynchronous-work/dont-block-the-event-loop; seen live: a handler \
                  blocked in a synchronous wait, the requests of 5 keep-alive connections node had accepted \
                  left unread",
    },
    Row {
        who: Who::Any,
        kind: AppNotReading,
        dir: None,
        cause: "Requests arrived and no worker reads them: the workers are blocked (a slow dependency, a blocking \
                call in an async handler) or all busy.",
        fix: "Find what the workers are waiting on (py-spy dump, jstack, gdb) and bound it. {APP_TIMEOUTS}",
        checked: "tcp(7): Recv-Q is data not yet read by the application",
    },
    // idle_no_keepalive
    Row {
        who: Who::Holder(Uvicorn),
        kind: IdleNoKeepalive,
        dir: Some(Inbound),
        cause: "The uvicorn setting {--timeout-keep-alive} closes a connection idle between requests, so an idle one this old \
                has a request in progress: a handler stuck on something.",
        fix: "Bound what the handler waits on. Behind a load balancer keep {--timeout-keep-alive} longer than the \
              balancer's idle timeout (over 60 s behind a default AWS ALB), or the balancer reuses connections \
              uvicorn is closing and clients get 502s. {APP_TIMEOUTS}",
        checked: "uvicorn docs/settings.md --timeout-keep-alive; AWS ALB idle timeout default 60 s",
    },
    Row {
        who: Who::Holder(Gunicorn),
        kind: IdleNoKeepalive,
        dir: Some(Inbound),
        cause: "The gunicorn setting {--keep-alive} closes idle keep-alive connections (the sync worker keeps none alive), \
                so an idle one this old has a request in progress.",
        fix: "Bound what the handler waits on; {--timeout} restarts a sync worker silent that long. Behind a load \
              balancer keep {--keep-alive} longer than the balancer's idle timeout. {APP_TIMEOUTS}",
        checked: GUNICORN_HELP,
    },
    Row {
        who: Who::Peer(Postgres),
        kind: IdleNoKeepalive,
        dir: Some(Outbound),
        cause: "Pooled PostgreSQL connections with TCP keepalive turned off: libpq turns it on unless the \
                connection string says keepalives=0.",
        fix: "libpq: keepalives=1 (the default), keepalives_idle=N to probe after N idle seconds, \
              tcp_user_timeout=N (ms) for unacknowledged data. With SQLAlchemy, pool_recycle=N replaces pooled \
              connections older than N s, pool_pre_ping=True tests them at checkout.",
        checked: "postgresql.org/docs/current/libpq-connect.html (keepalives, keepalives_idle, tcp_user_timeout); \
                  docs.sqlalchemy.org/en/20/core/pooling.html",
    },
    Row {
        who: Who::Any,
        kind: IdleNoKeepalive,
        dir: None,
        cause: "",
        fix: "Turn on SO_KEEPALIVE for these sockets (TCP_KEEPIDLE sets the idle time per socket), or close idle \
              connections in the application (a pool's maximum lifetime, an idle timeout shorter than any NAT or \
              firewall idle timeout).",
        checked: "tcp(7): SO_KEEPALIVE, TCP_KEEPIDLE, tcp_keepalive_time",
    },
    // accept_queue_full
    Row {
        who: Who::Holder(Uvicorn),
        kind: AcceptQueueFull,
        dir: None,
        cause: "uvicorn accepts on its event loop: while the loop is blocked (a synchronous call in an async def \
                endpoint) or the process is out of file descriptors, nothing accepts.",
        fix: "Unblock the loop (run blocking calls in a thread, def endpoints, async drivers); {--backlog} only \
              buys time; {--limit-concurrency} answers 503 past a bound instead of queueing.",
        checked: UVICORN_HELP,
    },
    Row {
        who: Who::Holder(Gunicorn),
        kind: AcceptQueueFull,
        dir: None,
        cause: "Each gunicorn sync worker accepts one connection at a time: {--workers} workers with {--threads} \
                threads, {--worker-class} worker class, are all busy.",
        fix: "Give it the concurrency its load needs: more {--workers}, {--threads} (the gthread worker), or an \
              async {--worker-class}; bound slow handlers ({--timeout} restarts a stuck sync worker). {--backlog} \
              only buys time.",
        checked: GUNICORN_HELP,
    },
    Row {
        who: Who::Holder(Nginx),
        kind: AcceptQueueFull,
        dir: None,
        cause: "The nginx workers do not accept fast enough (worker_connections reached, or workers blocked).",
        fix: "Check worker_processes and worker_connections; the backlog= parameter of listen (default 511 on \
              Linux) only buys time.",
        checked: "nginx.org/en/docs/http/ngx_http_core_module.html#listen; ngx_core_module worker_connections",
    },
    Row {
        who: Who::Any,
        kind: AcceptQueueFull,
        dir: None,
        cause: "The application does not call accept() fast enough: its workers are blocked or all busy.",
        fix: "Find what the workers wait on and bound it; a longer queue only buys time.",
        checked: "listen(2): the backlog bounds the queue of completed connections",
    },
    // fin_wait2, held by a process
    Row {
        who: Who::Holder(DockerProxy),
        kind: FinWait2,
        dir: Some(Outbound),
        cause: "docker-proxy passes a client's close on to the container (it shuts down its side toward the \
                container) and waits for the container's server to close its own, which it never did: nothing \
                accepted these connections there, or the server is stuck.",
        fix: "Diagnose the container's server (its accept queue, its event loop); docker-proxy lets go once it \
              closes. \"userland-proxy\": false in /etc/docker/daemon.json removes this hop.",
        checked: "docs.docker.com/engine/network/packet-filtering-firewalls/ (userland-proxy)",
    },
    Row {
        who: Who::Any,
        kind: FinWait2,
        dir: None,
        cause: "",
        fix: "Close the socket after shutdown(), or put a read timeout on the wait for the peer's FIN. The peer \
              is holding its side open (CLOSE_WAIT there).",
        checked: "tcp(7): tcp_fin_timeout applies to orphaned connections only",
    },
    // fd_exhaustion
    Row {
        who: Who::Holder(Uvicorn),
        kind: FdExhaustion,
        dir: None,
        cause: "uvicorn keeps one descriptor per connection it accepted; once it is out of them accept() fails \
                and new connections wait in the accept queue.",
        fix: "{--limit-concurrency} caps connections per worker (503 past it). Raise the limit with LimitNOFILE= \
              in its systemd unit, ulimit -n in its start script, or docker run --ulimit nofile=N:N.",
        checked: UVICORN_HELP,
    },
    Row {
        who: Who::Holder(Nginx),
        kind: FdExhaustion,
        dir: None,
        cause: "",
        fix: "worker_rlimit_nofile raises the workers' limit; keep worker_connections below it.",
        checked: "nginx.org/en/docs/ngx_core_module.html#worker_rlimit_nofile",
    },
    Row {
        who: Who::Any,
        kind: FdExhaustion,
        dir: None,
        cause: "",
        fix: "If the count keeps rising, something leaks descriptors. To raise the soft limit (RLIMIT_NOFILE): \
              LimitNOFILE= in its systemd unit, ulimit -n in its start script, docker run --ulimit nofile=N:N.",
        checked: "getrlimit(2) RLIMIT_NOFILE; systemd.exec(5) LimitNOFILE=",
    },
];

impl Row {
    /// Where the row was checked, and the settings it cites for `server`.
    pub fn source(&self, server: Option<Server>) -> String {
        let mut out: Vec<&str> = vec![self.checked];
        for s in SETTINGS.iter().filter(|s| Some(s.server) == server) {
            let cited = [self.cause, self.fix]
                .iter()
                .any(|t| t.contains(&format!("{{{}}}", s.name)));
            if cited && !out.contains(&s.checked) {
                out.push(s.checked);
            }
        }
        out.retain(|s| !s.is_empty());
        out.join("; ")
    }
}

/// The row for `kind` and the sockets' holder and peer: the holder's own
/// row first, then the peer's, then the generic one.
pub fn pick(
    kind: Kind,
    dir: Direction,
    holder: Option<Server>,
    peer: Option<Server>,
) -> &'static Row {
    let fits = |r: &&Row| r.kind == kind && r.dir.is_none_or(|d| d == dir);
    let find = |w: Who| ADVICE.iter().filter(fits).find(|r| r.who == w);
    holder
        .and_then(|s| find(Who::Holder(s)))
        .or_else(|| peer.and_then(|s| find(Who::Peer(s))))
        .or_else(|| find(Who::Any))
        .unwrap_or(&FALLBACK)
}

static FALLBACK: Row = Row {
    who: Who::Any,
    kind: CloseWait,
    dir: None,
    cause: "",
    fix: "",
    checked: "",
};

/// A setting's value as the command line states it: `--name V`,
/// `--name=V`, or an alias (`-w 4`, `-w4`).
pub fn stated(cmdline: &[u8], s: &Setting) -> Option<String> {
    let words: Vec<&str> = std::str::from_utf8(cmdline).ok()?.split(' ').collect();
    let names = std::iter::once(s.name).chain(s.aliases.iter().copied());
    for name in names {
        for (i, w) in words.iter().enumerate() {
            if *w == name {
                return words.get(i + 1).map(|v| v.to_string());
            }
            if let Some(v) = w.strip_prefix(name) {
                let v = if name.starts_with("--") {
                    v.strip_prefix('=')
                } else {
                    Some(v)
                };
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// Fills every `{--name}` of `text` with the server's setting: "--backlog 8
/// (its command line)", "--backlog (default 2048)".
pub fn fill(text: &str, server: Option<Server>, cmdlines: &[&[u8]]) -> String {
    let text = text.replace("{APP_TIMEOUTS}", APP_TIMEOUTS);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        let setting = SETTINGS
            .iter()
            .find(|s| Some(s.server) == server && s.name == name);
        out.push_str(&match setting {
            Some(s) => describe(s, cmdlines),
            None => name.to_string(),
        });
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn describe(s: &Setting, cmdlines: &[&[u8]]) -> String {
    if let Some(v) = cmdlines.iter().find_map(|c| stated(c, s)) {
        return format!("{} {v} (its command line)", s.name);
    }
    // A gunicorn config file may set what the command line does not.
    let config = cmdlines.iter().any(|c| {
        c.split(|&b| b == b' ')
            .any(|w| w == b"-c" || w == b"--config" || w.starts_with(b"--config="))
    });
    match (s.default, config) {
        (Some(d), false) => format!("{} (default {d})", s.name),
        (Some(d), true) => format!("{} (its config file, or the default {d})", s.name),
        (None, false) => format!("{} (not set)", s.name),
        (None, true) => format!("{} (its config file, or not set)", s.name),
    }
}

/// How the sockets of a finding are held.
#[derive(Clone, Debug, Default)]
pub struct Holders {
    /// Pids holding a descriptor of one of the sockets.
    pub pids: Vec<u32>,
    /// Sockets still in a listener's accept queue (no descriptor yet).
    pub queued: u32,
    /// Owners of the listeners those queued sockets wait on.
    pub listener_pids: Vec<u32>,
    /// Sockets with an inode whose holder could not be found.
    pub unknown: u32,
    /// Sockets the kernel holds for no process (closed, inode 0).
    pub orphans: u32,
}

impl Holders {
    /// Every pid concerned: holders and the listeners' owners.
    pub fn all_pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .pids
            .iter()
            .chain(&self.listener_pids)
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Who and where a finding is about, in words.
pub struct Ctx<'a> {
    /// The server the holders (or the listeners' owners) run.
    pub server: Option<Server>,
    /// The server at the remote end of outbound sockets, when known.
    pub peer: Option<Server>,
    /// "uvicorn (pids 12, 13)", "a process that could not be read".
    pub who: String,
    /// The listeners' owners, for queued sockets.
    pub listener_who: String,
    /// "port 30020", "10.0.0.5:5432".
    pub place: String,
    /// The port the finding is about (local inbound, remote outbound).
    pub port: u16,
    /// `--netns ARG ` to repeat in a command, for another namespace.
    netns_arg: String,
    pub dir: Direction,
    /// `--reload` on a uvicorn command line.
    pub reload: bool,
    pub holders: Holders,
    /// For a forwarder's sockets: where it forwards the port, in words
    /// ("port 30020 to 172.17.0.2:30020 in netns … (docker … web)").
    pub forwards_to: Option<String>,
    cmdlines: Vec<&'a [u8]>,
}

fn list(v: &[u32]) -> String {
    let mut s: Vec<String> = v.iter().take(5).map(u32::to_string).collect();
    if v.len() > 5 {
        s.push(format!("and {} more", v.len() - 5));
    }
    s.join(", ")
}

fn named(snap: &Snapshot, pids: &[u32]) -> Option<String> {
    let procs: Vec<&Process> = pids.iter().filter_map(|p| snap.processes.get(p)).collect();
    let first = procs.first()?;
    let name = String::from_utf8_lossy(&first.comm).into_owned();
    let name = match procs.iter().find_map(|p| Server::detect(p)) {
        Some(s) if s.name() != name => format!("{name} ({})", s.name()),
        _ => name,
    };
    Some(match pids.len() {
        1 => format!("{name} (pid {})", pids[0]),
        _ => format!("{name} (pids {})", list(pids)),
    })
}

impl<'a> Ctx<'a> {
    pub fn new(
        snap: &'a Snapshot,
        holders: Holders,
        dir: Direction,
        remote: Option<IpAddr>,
        port: u16,
    ) -> Ctx<'a> {
        // The peer of outbound sockets is set by the caller, who knows the
        // listeners.
        let all = holders.all_pids();
        let procs: Vec<&Process> = all.iter().filter_map(|p| snap.processes.get(p)).collect();
        let server = procs.iter().find_map(|p| Server::detect(p));
        let reload = procs
            .iter()
            .any(|p| p.cmdline.split(|&b| b == b' ').any(|w| w == b"--reload"));
        let cmdlines = procs.iter().map(|p| p.cmdline.as_slice()).collect();
        let mut who: Vec<String> = named(snap, &holders.pids).into_iter().collect();
        if holders.unknown > 0 {
            who.push(if snap.gaps.as_root {
                "a process that could not be read".to_string()
            } else {
                "a process zombiescan could not read (run as root to see it)".to_string()
            });
        }
        if holders.orphans > 0 {
            who.push(
                "no process (orphaned: closed by their process, held by the kernel)".to_string(),
            );
        }
        let listener_who = named(snap, &holders.listener_pids)
            .unwrap_or_else(|| "its listener (not part of this scan)".to_string());
        if who.is_empty() && holders.queued > 0 {
            who.push(listener_who.clone());
        }
        let place = match remote {
            Some(ip) => SocketAddr::new(ip, port).to_string(),
            None => format!("port {port}"),
        };
        Ctx {
            server,
            peer: None,
            who: who.join(" and "),
            listener_who,
            place,
            port,
            netns_arg: match (&snap.netns.enter, snap.netns.own) {
                (Some(e), false) => format!("--netns {e} "),
                _ => String::new(),
            },
            dir,
            reload,
            holders,
            forwards_to: None,
            cmdlines,
        }
    }

    fn conns(&self, n: u32) -> String {
        let c = if n == 1 { "connection" } else { "connections" };
        match self.dir {
            Direction::Inbound => format!("{n} {c} on {}", self.place),
            Direction::Outbound => format!("{n} {c} to {}", self.place),
        }
    }

    /// The row's cause and fix, filled with this server's settings.
    fn advice(&self, kind: Kind) -> (String, String) {
        let row = pick(kind, self.dir, self.server, self.peer);
        (
            fill(row.cause, self.server, &self.cmdlines),
            fill(row.fix, self.server, &self.cmdlines),
        )
    }
}

/// The server at `port` of outbound sockets: the server `owners` (of a
/// listener of this snapshot on that port) run, or PostgreSQL's port.
pub fn peer_server(snap: &Snapshot, owners: &[u32], port: u16) -> Option<Server> {
    owners
        .iter()
        .filter_map(|p| snap.processes.get(p))
        .find_map(Server::detect)
        .or((port == 5432).then_some(Server::Postgres))
}

/// The singular or the plural form of a verb for `n` subjects.
fn verb(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn ago(age: Option<&str>) -> String {
    age.map_or(String::new(), |a| format!(" (the oldest {a} ago)"))
}

/// `a` then `b`, with one space between when both are there.
fn join(a: String, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a,
        (true, false) => b.to_string(),
        (false, false) => format!("{a} {b}"),
    }
}

/// Relief before the fix: the command that closes these sockets, and what
/// it does. Not for a forwarder's, which end when their upstream does.
fn relief(c: &Ctx, kind: Kind) -> String {
    if c.server == Some(Server::DockerProxy) {
        return String::new();
    }
    let mut s = format!(
        "Relief now: zombiescan kill {}--port {} --finding {} lists them, and with --yes resets them: the peer gets \
         a RST, the owner's next write on them fails with ECONNABORTED (a read too, unless the peer had closed: then it \
         reads end-of-file, as before), the kernel frees them.",
        c.netns_arg,
        c.port,
        kind.name()
    );
    if kind == Kind::CloseWait && !c.holders.pids.is_empty() {
        s.push_str(" The application still holds each descriptor until it handles that error: it relieves, it does not fix.");
    }
    s
}

/// The sentence that ties a forwarder's sockets to the namespace it
/// forwards to, when that namespace is in the same report.
fn forwarding(c: &Ctx) -> String {
    c.forwards_to.as_ref().map_or(String::new(), |to| {
        format!(" It forwards {to}, whose report comes first: the diagnosis is there.")
    })
}

const RELOAD: &str = "--reload is on: it is for development only; do not run it in production.";

fn with_reload(c: &Ctx, fix: String) -> String {
    if c.reload { join(fix, RELOAD) } else { fix }
}

pub fn close_wait(c: &Ctx, n: u32, age: Option<&str>) -> (String, String) {
    let h = &c.holders;
    let held = n - h.queued.min(n);
    let mut explanation = format!(
        "{} {} in CLOSE_WAIT{}: the peer closed its side and the socket was never closed here.",
        c.conns(n),
        verb(n, "is", "are"),
        ago(age),
    );
    if h.queued > 0 {
        explanation.push_str(&format!(
            " {} of them {} still in the accept queue of {}: {} never accepted {}, so {} no descriptor; \
             the cause is that nothing accepts, not a forgotten close().",
            h.queued,
            verb(h.queued, "is", "are"),
            c.place,
            c.listener_who,
            verb(h.queued, "it", "them"),
            verb(h.queued, "it holds", "they hold"),
        ));
        if held > 0 {
            explanation.push_str(&format!(
                " {held} {} held by {}.",
                verb(held, "is", "are"),
                c.who
            ));
        }
    } else {
        explanation.push_str(&format!(" They are held by {}.", c.who));
    }
    let (cause, fix) = c.advice(Kind::CloseWait);
    explanation = join(explanation, &cause);
    explanation.push_str(&forwarding(c));
    explanation.push_str(
        " CLOSE_WAIT never times out in the kernel: only the owner closing the socket (or exiting) ends it.",
    );
    let fix = if c.server == Some(Server::DockerProxy) {
        fix
    } else if h.queued == n {
        join(fix, "Restarting the server frees them now.")
    } else {
        join(
            fix,
            "Restarting the process frees them now; it does not fix the cause.",
        )
    };
    let fix = join(fix, &relief(c, Kind::CloseWait));
    (explanation, with_reload(c, fix))
}

/// Why sockets of a half_open finding look dead.
pub struct Dead<'a> {
    pub counts: &'a BTreeMap<&'static str, u32>,
    pub max_retrans: u8,
    /// The SYNs go to a listener of this scan whose accept queue is full.
    pub queue_full: Option<String>,
}

pub fn half_open(
    c: &Ctx,
    n: u32,
    d: &Dead,
    age: Option<&str>,
    retries2: Option<u64>,
    syn_retries: Option<u64>,
) -> (String, String) {
    let get = |k| d.counts.get(k).copied().unwrap_or(0);
    let syn = get("syn_sent_unanswered");
    let mut why = Vec::new();
    if get("retransmitting") > 0 {
        why.push(format!(
            "{} have unacknowledged data retransmitted up to {} times",
            get("retransmitting"),
            d.max_retrans
        ));
    }
    if get("keepalive_unanswered") > 0 {
        why.push(format!(
            "{} get no answer to keepalive probes",
            get("keepalive_unanswered")
        ));
    }
    if syn > 0 {
        why.push(format!("{syn} keep retrying a SYN that is not answered"));
    }
    let last = match (age, syn == n) {
        (Some(a), true) => format!(" (the oldest for at least {a})"),
        (Some(a), false) => format!(" (the oldest for {a})"),
        (None, _) => String::new(),
    };
    let syn_retries = syn_retries.map_or("net.ipv4.tcp_syn_retries".to_string(), |v| {
        format!("net.ipv4.tcp_syn_retries = {v}")
    });
    let (cause, fix) = c.advice(Kind::HalfOpen);
    if syn == n {
        // Only SYNs: the peer never answered; nothing was ever in flight.
        let explanation = match &d.queue_full {
            Some(listener) => format!(
                "{}, held by {}, {} in SYN_SENT{last}: the destination is alive but its accept queue is full \
                 ({listener}), so the kernel there drops these SYNs. The client gives up after {syn_retries} \
                 retries, or its connect timeout.",
                c.conns(n),
                c.who,
                verb(n, "is", "are"),
            ),
            None => format!(
                "{}, held by {}, {} in SYN_SENT{last}: nothing answers the SYN (the host is down or \
                 unreachable, a firewall drops it, or its accept queue is full). The client gives up after \
                 {syn_retries} retries, or its connect timeout.",
                c.conns(n),
                c.who,
                verb(n, "is", "are"),
            ),
        };
        let explanation = explanation + &forwarding(c);
        let syn_fix = match &d.queue_full {
            Some(_) => "Fix the destination first: its accept_queue_full finding in this report. Meanwhile a \
                        connect timeout lets callers fail fast."
                .to_string(),
            None => format!(
                "Check that {} is up, reachable and accepting; use a connect timeout.",
                c.place
            ),
        };
        // A row for the holder (a forwarder) says its part first; the
        // generic row speaks of data in flight, which a SYN is not.
        let row = pick(Kind::HalfOpen, c.dir, c.server, c.peer);
        let fix = if row.who == Who::Any {
            syn_fix
        } else {
            join(fix, &syn_fix)
        };
        return (explanation, fix);
    }
    let explanation = format!(
        "{}, held by {}, {} dead: {}{last}. {} These sockets tie up workers and descriptors until the kernel \
         gives up.",
        c.conns(n),
        c.who,
        verb(n, "looks", "look"),
        why.join("; "),
        cause,
    );
    let retries = retries2.map_or("net.ipv4.tcp_retries2".to_string(), |v| {
        format!("net.ipv4.tcp_retries2 = {v}")
    });
    let fix = join(
        format!(
            "With data in flight the kernel gives up only after {retries} retransmissions (the default 15 is \
             about 15 minutes); lower tcp_retries2 host-wide (8 is about 100 s) or set TCP_USER_TIMEOUT per \
             socket."
        ),
        &fix,
    );
    let fix = join(fix, &relief(c, Kind::HalfOpen));
    (explanation, fix)
}

pub fn peer_not_reading(c: &Ctx, n: u32, send_q: u64, age: Option<&str>) -> (String, String) {
    let (cause, fix) = c.advice(Kind::PeerNotReading);
    let explanation = format!(
        "{} {} {send_q} bytes waiting to be sent that the peer does not take: it answers, but its receive \
         window stays closed{}. {} The kernel only probes the window, and {} stays tied up writing.",
        c.conns(n),
        verb(n, "has", "have"),
        age.map_or(String::new(), |a| format!(" (nothing sent for {a})")),
        cause,
        c.who
    );
    let fix = join(fix, &relief(c, Kind::PeerNotReading));
    (explanation, fix)
}

pub fn app_not_reading(c: &Ctx, n: u32, recv_q: u64, age: Option<&str>) -> (String, String) {
    let (cause, fix) = c.advice(Kind::AppNotReading);
    let explanation = format!(
        "{} {} {recv_q} bytes received and not read by {}{}. {}",
        c.conns(n),
        verb(n, "holds", "hold"),
        c.who,
        age.map_or(String::new(), |a| format!("; the oldest has waited {a}")),
        cause,
    );
    (explanation, with_reload(c, fix))
}

pub fn idle_no_keepalive(
    c: &Ctx,
    n: u32,
    idle_s: u64,
    age: Option<&str>,
    ka_time: Option<u64>,
) -> (String, String) {
    let (cause, fix) = c.advice(Kind::IdleNoKeepalive);
    let explanation = join(
        format!(
            "{}, held by {}, carried no data for over {idle_s} s{} and {} no keepalive timer: if the peer \
             vanished (host crash, a NAT or firewall dropping the idle flow) such a socket is never reclaimed.",
            c.conns(n),
            c.who,
            ago(age).replace(" ago", " idle"),
            verb(n, "has", "have")
        ),
        &cause,
    );
    let ka = ka_time.map_or("net.ipv4.tcp_keepalive_time".to_string(), |v| {
        format!("net.ipv4.tcp_keepalive_time = {v} s")
    });
    let fix = join(
        fix,
        &format!("With SO_KEEPALIVE on, the kernel probes after {ka}."),
    );
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
                "Nothing leaks here; the peer {} holds its side open, likely in CLOSE_WAIT: run zombiescan where it \
                 runs. Lowering {ft} frees these sooner.",
                c.place
            ),
        )
    } else {
        let (cause, fix) = c.advice(Kind::FinWait2);
        let explanation = join(
            format!(
                "{} {} in FIN_WAIT2 held by {}{}: it shut down its sending side and the peer never closed its own. A \
                 FIN_WAIT2 socket still held by its process never times out ({ft} applies only after close()).",
                c.conns(n),
                verb(n, "is", "are"),
                c.who,
                ago(age)
            ),
            &cause,
        );
        let fix = join(fix, &relief(c, Kind::FinWait2));
        (explanation + &forwarding(c), fix)
    }
}

pub fn accept_queue_full(
    c: &Ctx,
    queue: u64,
    backlog: Option<u64>,
    overflows: (i64, &str),
    somaxconn: Option<u64>,
    oldest_wait: Option<&str>,
) -> (String, String) {
    let limit = backlog.map_or("a limit /proc does not show".to_string(), |b| {
        format!("a limit of {b}")
    });
    let waited = oldest_wait.map_or(String::new(), |w| {
        format!("; the oldest has waited {w} to be accepted")
    });
    let (cause, fix) = c.advice(Kind::AcceptQueueFull);
    let explanation = join(
        format!(
            "The accept queue of {} holds {queue} connections for {limit}{waited}: the kernel completed \
             handshakes that {} does not accept. When it is full new connections are dropped (ListenOverflows \
             {} {}).",
            c.place, c.who, overflows.0, overflows.1
        ),
        &cause,
    );
    let smc = somaxconn.map_or("net.core.somaxconn".to_string(), |v| {
        format!("net.core.somaxconn = {v}")
    });
    let fix = join(fix, &format!("The queue's limit is min(backlog, {smc})."));
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
             net.ipv4.tcp_max_syn_backlog (now {}) and the listen backlog, and make sure the server accepts.",
            syncookies.map_or("unknown".to_string(), |v| v.to_string()),
            max_syn.map_or("unknown".to_string(), |v| v.to_string())
        ),
    )
}

pub fn fd_process(
    p: &Process,
    limit: u64,
    pct: &str,
    close_wait: u32,
    queued: u32,
) -> (String, String) {
    let name = String::from_utf8_lossy(&p.comm);
    let server = Server::detect(p);
    let row = pick(Kind::FdExhaustion, Direction::Inbound, server, None);
    let cmd = [p.cmdline.as_slice()];
    let mut explanation = format!(
        "{name} (pid {}) has {} of its {limit} file descriptors open ({pct}): at the limit accept() fails with \
         EMFILE and the server stops taking connections.",
        p.pid, p.fds_open
    );
    if queued > 0 {
        explanation.push_str(&format!(
            " {queued} {} in the accept queue of its listeners, not accepted yet.",
            verb(queued, "connection waits", "connections wait")
        ));
    }
    explanation = join(explanation, &fill(row.cause, server, &cmd));
    let leak = if close_wait > 0 {
        format!(" {close_wait} of its sockets are in CLOSE_WAIT: closing them frees descriptors.")
    } else {
        String::new()
    };
    let generic = pick(Kind::FdExhaustion, Direction::Inbound, None, None);
    let mut fix = fill(row.fix, server, &cmd);
    if !std::ptr::eq(row, generic) {
        fix = join(fix, generic.fix);
    }
    let fix = format!("{fix}{leak} Check the limit with prlimit --pid {}.", p.pid);
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
        assert_eq!(
            d("docker-proxy", "/usr/bin/docker-proxy -proto tcp"),
            Some(Server::DockerProxy)
        );
        assert_eq!(
            d("postgres", "postgres: app app 10.0.0.1(5000) idle"),
            Some(Server::Postgres)
        );
        assert_eq!(d("python3", "python3 uvicorn_helper.py"), None);
    }

    /// Every row: a source, a fix, a real server setting behind every
    /// placeholder, and at most one row per server, finding and direction.
    #[test]
    fn every_row_of_advice_is_complete_and_resolves() {
        for r in ADVICE {
            let at = format!("{:?} {:?} {:?}", r.who, r.kind, r.dir);
            assert!(!r.checked.is_empty(), "{at}: where was it checked?");
            assert!(!r.fix.is_empty(), "{at}: no fix");
            // Each cause is a sentence of its own; server names keep their
            // lower case.
            assert!(
                r.cause.is_empty()
                    || r.cause.starts_with(|c: char| c.is_uppercase())
                    || ["uvicorn ", "nginx ", "docker-proxy "]
                        .iter()
                        .any(|n| r.cause.starts_with(n)),
                "{at}: {}",
                r.cause
            );
            let server = match r.who {
                Who::Holder(s) | Who::Peer(s) => Some(s),
                Who::Any => None,
            };
            for text in [r.cause, r.fix] {
                let filled = fill(text, server, &[]);
                assert!(
                    !filled.contains('{') && !filled.contains('}'),
                    "{at}: a placeholder names no setting of {server:?}: {filled}"
                );
            }
            let same = ADVICE
                .iter()
                .filter(|o| o.who == r.who && o.kind == r.kind && o.dir == r.dir)
                .count();
            assert_eq!(same, 1, "{at}: one row each");
        }
        // Every finding about sockets has generic advice in both directions.
        for kind in [
            Kind::CloseWait,
            Kind::FinWait2,
            Kind::HalfOpen,
            Kind::PeerNotReading,
            Kind::AppNotReading,
            Kind::IdleNoKeepalive,
            Kind::AcceptQueueFull,
            Kind::FdExhaustion,
        ] {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let r = pick(kind, dir, None, None);
                assert!(r.who == Who::Any && r.kind == kind, "{kind:?} {dir:?}");
            }
        }
        for s in SETTINGS {
            assert!(s.name.starts_with("--") && !s.checked.is_empty());
        }
    }

    #[test]
    fn settings_come_from_the_command_line_or_say_their_default() {
        let g: &[u8] = b"/venv/bin/python3 /venv/bin/gunicorn -w 2 --backlog=8 -t120 app:app";
        assert_eq!(
            fill(
                "{--workers}, {--backlog}, {--timeout}, {--threads}",
                Some(Server::Gunicorn),
                &[g]
            ),
            "--workers 2 (its command line), --backlog 8 (its command line), \
             --timeout 120 (its command line), --threads (default 1)"
        );
        let c: &[u8] = b"gunicorn -c gunicorn.conf.py app:app";
        assert_eq!(
            fill("{--timeout}", Some(Server::Gunicorn), &[c]),
            "--timeout (its config file, or the default 30 s)"
        );
        let u: &[u8] = b"python3 -m uvicorn app:app --limit-concurrency 50";
        assert_eq!(
            fill(
                "{--limit-concurrency} {--backlog}",
                Some(Server::Uvicorn),
                &[u]
            ),
            "--limit-concurrency 50 (its command line) --backlog (default 2048)"
        );
        // A word that only starts like a flag is not that flag.
        let w: &[u8] = b"gunicorn --workers-tmp-dir /dev/shm app:app";
        assert_eq!(
            fill("{--workers}", Some(Server::Gunicorn), &[w]),
            "--workers (default 1)"
        );
    }
}
