//! The advice as data: one row per server and finding, with where each
//! claim was checked, and the settings the rows cite. A test walks every
//! row (`every_row_of_advice_is_complete_and_resolves`).

use super::Server;
use crate::classify::Kind;
use crate::model::Direction;

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
/// What ties gunicorn's --timeout to a uvicorn worker's event loop.
const UVICORN_WORKER: &str = "uvicorn 0.34.0 uvicorn/workers.py (UvicornWorker: timeout_notify from gunicorn's \
timeout, callback_notify) and uvicorn/server.py on_tick (notifies from the event loop, once a second); \
gunicorn 23.0.0 arbiter.py murder_workers (SIGABRT past --timeout)";
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
    /// The host's kernel: a host-wide table, or sockets the kernel holds
    /// for no process. Its `{name}`s are figures of the finding.
    Host,
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

pub(super) const APP_TIMEOUTS: &str = "Bound every call a handler makes: a database statement_timeout, \
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
        fix: "Find the blocking call (py-spy dump --pid {pid} shows where the loop is stuck) and take it off the \
              loop: run it in a thread (asyncio.to_thread, starlette's run_in_threadpool), declare the endpoint \
              with def so the framework runs it in a thread pool, or use an async driver. {--workers} more \
              workers spread the load, but each blocked loop still stalls every connection it holds.",
        checked: "uvicorn/protocols/http/h11_impl.py and httptools_impl.py: eof_received() returns None, so asyncio \
                  closes the transport on EOF; connection_lost() closes it",
    },
    Row {
        who: Who::Holder(UvicornWorker),
        kind: CloseWait,
        dir: Some(Inbound),
        cause: "gunicorn runs uvicorn's worker class ({--worker-class}): each worker is an asyncio event loop, \
                which closes a connection as soon as it reads the client's FIN; a CLOSE_WAIT that stays means \
                that worker's loop is blocked, by a synchronous call inside an async def endpoint.",
        fix: "Find the blocking call (py-spy dump --pid {pid} shows where the loop is stuck) and take it off the \
              loop: a thread (asyncio.to_thread), a def endpoint, an async driver. gunicorn's {--timeout} aborts \
              a worker whose loop has not notified it for that long and starts another: its requests fail then. \
              More {--workers} spread the load; each blocked loop still stalls every connection it holds.",
        checked: UVICORN_WORKER,
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
        who: Who::Peer(MySql),
        kind: CloseWait,
        dir: Some(Outbound),
        cause: "MySQL ended these connections (wait_timeout, 28800 s by default, closes a session idle that long; \
                a restart; KILL) and the client's pool kept them: the next query on one fails with \"MySQL server \
                has gone away\" (2006) or \"Lost connection to MySQL server\" (2013).",
        fix: "Replace pooled connections before the server's wait_timeout: with SQLAlchemy, pool_recycle=N below it \
              and pool_pre_ping=True; with PyMySQL alone, conn.ping(reconnect=True) before a query after a pause; \
              other pools: a maximum connection lifetime below wait_timeout.",
        checked: "dev.mysql.com/doc/refman/8.0/en/server-system-variables.html#sysvar_wait_timeout (default 28800); \
                  docs.sqlalchemy.org/en/20/core/pooling.html (pool_recycle, pool_pre_ping); PyMySQL \
                  pymysql/connections.py Connection.ping(reconnect=False)",
    },
    Row {
        who: Who::Peer(Http),
        kind: CloseWait,
        dir: Some(Outbound),
        cause: "The HTTP server at the other end closed these idle keep-alive connections (its keep-alive \
                timeout) and the client's pool still holds them: harmless until the pool takes one again. \
                urllib3 (requests) has no idle expiry and checks a pooled connection when it takes it, dropping \
                one the server closed; a request can still race a close made just before it.",
        fix: "Expire idle connections in the client before the server closes them: httpx \
              Limits(keepalive_expiry=…) (default 5 s), aiohttp TCPConnector(keepalive_timeout=…) (default 15 s); \
              retry idempotent requests once on a connection error (urllib3 Retry). The server's side is its \
              keep-alive timeout (uvicorn --timeout-keep-alive, default 5 s; gunicorn --keep-alive, default 2 s; \
              nginx keepalive_timeout, default 75 s).",
        checked: "httpx/_config.py Limits (keepalive_expiry=5.0); aiohttp connector.py BaseConnector \
                  (keepalive_timeout 15.0); urllib3 connectionpool.py HTTPConnectionPool._get_conn \
                  (is_connection_dropped); uvicorn 0.34.0 --help; gunicorn 23.0.0 --help; \
                  nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout",
    },
    Row {
        who: Who::Any,
        kind: CloseWait,
        dir: Some(Outbound),
        cause: "The server at the other end closed these connections (an idle or keep-alive timeout, a restart) \
                and the client still holds them: most often an idle pool, an HTTP client's or a database's, that \
                has not yet noticed; harmless until it takes one again. A client that never closes its \
                responses leaks them instead.",
        fix: "Give pooled connections an idle expiry or a maximum lifetime shorter than the server's idle timeout \
              and test them at checkout (httpx keepalive_expiry, aiohttp keepalive_timeout; SQLAlchemy \
              pool_pre_ping, pool_recycle); close every HTTP response (context managers).",
        checked: "docs.sqlalchemy.org/en/20/core/pooling.html; httpx/_config.py Limits (keepalive_expiry); \
                  aiohttp connector.py BaseConnector (keepalive_timeout)",
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
        who: Who::Peer(RabbitMq),
        kind: HalfOpen,
        dir: Some(Outbound),
        cause: "The broker stopped acknowledging: its host is down, or the path to it was cut.",
        fix: "pika: AMQP heartbeats notice a silent broker (two missed heartbeats close the connection): leave \
              heartbeat unset to take the broker's (60 s by default since RabbitMQ 3.5.5) or set heartbeat=N, \
              never 0; a TCP_USER_TIMEOUT (ms) in tcp_options ends a connection whose data stays unacknowledged \
              that long. socket_timeout only bounds connect().",
        checked: "pika/connection.py Parameters (DEFAULT_HEARTBEAT_TIMEOUT None accepts the server's proposal; \
                  DEFAULT_SOCKET_TIMEOUT 10.0, the socket.connect() timeout); pika/tcp_socket_opts.py \
                  (TCP_USER_TIMEOUT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT); rabbitmq.com/docs/heartbeats",
    },
    Row {
        who: Who::Peer(MySql),
        kind: HalfOpen,
        dir: Some(Outbound),
        cause: "The MySQL server stopped acknowledging: its host is down, or the path to it was cut.",
        fix: "PyMySQL and mysqlclient: read_timeout=N and write_timeout=N (seconds; no limit by default) end a \
              query whose answer does not come, where the kernel would retransmit for tcp_retries2; a \
              TCP_USER_TIMEOUT on the socket does the same for unacknowledged data.",
        checked: "PyMySQL pymysql/connections.py (read_timeout, write_timeout: default None); mysqlclient \
                  src/MySQLdb/_mysql.c (read_timeout, write_timeout: MYSQL_OPT_READ_TIMEOUT, \
                  MYSQL_OPT_WRITE_TIMEOUT)",
    },
    Row {
        who: Who::Peer(Redis),
        kind: HalfOpen,
        dir: Some(Outbound),
        cause: "Redis stopped acknowledging: its host is down, or the path to it was cut.",
        fix: "redis-py: socket_timeout=N bounds the wait for each reply; socket_keepalive=True with \
              socket_keepalive_options (socket.TCP_KEEPIDLE and the like) probes an idle connection; \
              health_check_interval=N (0, off, by default) sends a PING before using a connection idle longer \
              than N s and reconnects when it fails.",
        checked: "redis-py Redis/Connection (socket_timeout, socket_keepalive, socket_keepalive_options, \
                  health_check_interval: github.com/redis/redis-py commit f60b2b0)",
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
        who: Who::Holder(UvicornWorker),
        kind: AppNotReading,
        dir: Some(Inbound),
        cause: "Each of gunicorn's uvicorn workers runs one event loop: a blocking call in an async def endpoint \
                stalls every connection of that worker.",
        fix: "Take blocking work off the loop (def endpoints or a thread pool, async drivers) and bound slow \
              calls; more {--workers} spread the load; {--timeout} restarts a worker whose loop stays blocked \
              that long. {APP_TIMEOUTS}",
        checked: UVICORN_WORKER,
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
        dir: Some(Outbound),
        cause: "Responses arrived on these connections and the client never read them: a streamed response left \
                unread and unclosed, a connection never given back to its pool.",
        fix: "Read or close every response: with requests, a stream=True response in a with block or \
              response.close(); with httpx, client.stream() inside a with (async with) block, or \
              response.read()/aread() then close()/aclose().",
        checked: "requests docs user/advanced (body content workflow: stream=True, close the response); httpx \
                  docs quickstart and async (streaming responses, aread, aclose)",
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
        who: Who::Peer(RabbitMq),
        kind: IdleNoKeepalive,
        dir: Some(Outbound),
        cause: "AMQP connections idle this long without TCP keepalive: with heartbeats on (pika takes the broker's \
                60 s by default) a frame would have crossed since, so heartbeats are off (heartbeat=0) or longer \
                than this; a broker that vanishes now is noticed only at the next publish.",
        fix: "pika: leave heartbeat unset, or set heartbeat=N (never 0); a TCP_KEEPIDLE in tcp_options turns on \
              TCP keepalive (pika sets SO_KEEPALIVE for it); blocked_connection_timeout=N bounds a connection the \
              broker blocked (a memory or disk alarm).",
        checked: "pika/connection.py Parameters (DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_BLOCKED_CONNECTION_TIMEOUT \
                  None); pika/tcp_socket_opts.py set_sock_opts; rabbitmq.com/docs/heartbeats",
    },
    Row {
        who: Who::Peer(MySql),
        kind: IdleNoKeepalive,
        dir: Some(Outbound),
        cause: "Connections to MySQL idle this long without TCP keepalive on the client's side (PyMySQL turns it on; \
                this client does not): the server closes a session idle past its wait_timeout (28800 s by \
                default), and a server that vanished is noticed only at the next query.",
        fix: "Keep pooled connections younger than wait_timeout (SQLAlchemy pool_recycle=N, pool_pre_ping=True); \
              turn SO_KEEPALIVE on in the client, or bound each query with read_timeout.",
        checked: "PyMySQL pymysql/connections.py Connection.connect (SO_KEEPALIVE on TCP connections); \
                  dev.mysql.com/doc/refman/8.0/en/server-system-variables.html#sysvar_wait_timeout; \
                  docs.sqlalchemy.org/en/20/core/pooling.html",
    },
    Row {
        who: Who::Peer(Redis),
        kind: IdleNoKeepalive,
        dir: Some(Outbound),
        cause: "Pooled Redis connections idle this long without TCP keepalive: redis-py turns it on only when \
                asked (socket_keepalive).",
        fix: "redis-py: socket_keepalive=True with socket_keepalive_options (socket.TCP_KEEPIDLE and the like); \
              health_check_interval=N (0, off, by default) PINGs a connection idle longer than N s before using \
              it. The server's own tcp-keepalive (redis.conf) probes from its side only.",
        checked: "redis-py Connection (socket_keepalive, socket_keepalive_options, health_check_interval: \
                  github.com/redis/redis-py commit f60b2b0); redis.conf tcp-keepalive",
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
        who: Who::Holder(UvicornWorker),
        kind: AcceptQueueFull,
        dir: None,
        cause: "gunicorn's uvicorn workers accept on their event loops: while a worker's loop is blocked (a \
                synchronous call in an async def endpoint), that worker accepts nothing.",
        fix: "Unblock the loops (run blocking calls in a thread, def endpoints, async drivers); gunicorn's \
              {--timeout} restarts a worker whose loop stays blocked that long; {--backlog} only buys time.",
        checked: UVICORN_WORKER,
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
    // The host's kernel: its tables and the sockets it holds for no
    // process (docs.kernel.org/networking/ip-sysctl.html).
    Row {
        who: Who::Host,
        kind: FinWait2,
        dir: None,
        cause: "",
        fix: "Nothing leaks here; {peer} open, likely in CLOSE_WAIT: run zombiescan where it runs. Lowering \
              {tcp_fin_timeout} frees these sooner.",
        checked: "ip-sysctl.rst: tcp_fin_timeout (how long an orphaned connection stays in FIN_WAIT2)",
    },
    Row {
        who: Who::Host,
        kind: SynBacklog,
        dir: None,
        cause: "",
        fix: "Keep net.ipv4.tcp_syncookies = 1 (now {tcp_syncookies}) so the host keeps serving under a SYN flood; \
              raise net.ipv4.tcp_max_syn_backlog (now {tcp_max_syn_backlog}) and the listen backlog, and make sure \
              the server accepts.",
        checked: "ip-sysctl.rst: tcp_syncookies, tcp_max_syn_backlog (remembered connection requests not yet \
                  acknowledged by the client)",
    },
    Row {
        who: Who::Host,
        kind: FdExhaustion,
        dir: None,
        cause: "",
        fix: "Find the process holding the most descriptors (zombiescan's FDS column, or ls /proc/*/fd | wc -l), \
              and raise fs.file-max (sysctl -w fs.file-max=N, persisted in /etc/sysctl.d/).",
        checked: "docs.kernel.org/admin-guide/sysctl/fs.html: file-max, file-nr; open(2) ENFILE",
    },
    Row {
        who: Who::Host,
        kind: EphemeralPortExhaustion,
        dir: None,
        cause: "",
        fix: "Reuse connections (a connection pool, HTTP keep-alive) instead of opening one per request. Widen \
              net.ipv4.ip_local_port_range (now {ip_local_port_range}); net.ipv4.tcp_tw_reuse = 1 lets new \
              outbound connections reuse ports in TIME_WAIT.",
        checked: "ip-sysctl.rst: ip_local_port_range, tcp_tw_reuse (TIME-WAIT sockets for new outgoing \
                  connections); connect(2) EADDRNOTAVAIL",
    },
    Row {
        who: Who::Host,
        kind: TimeWaitPressure,
        dir: None,
        cause: "",
        fix: "TIME_WAIT stays on the side that closes first: reuse connections (keep-alive, pools) rather than \
              opening one per request; for outbound connections net.ipv4.tcp_tw_reuse = 1 allows reusing them.",
        checked: "ip-sysctl.rst: tcp_max_tw_buckets (past it a time-wait socket is destroyed and a warning \
                  printed), tcp_tw_reuse",
    },
    Row {
        who: Who::Host,
        kind: OrphanPressure,
        dir: None,
        cause: "",
        fix: "Orphans wait on peers that do not answer (FIN_WAIT1, LAST_ACK) or do not close (FIN_WAIT2): lower \
              net.ipv4.tcp_fin_timeout (now {tcp_fin_timeout}) to free FIN_WAIT2 sooner, and find the peers that \
              do not close.",
        checked: "ip-sysctl.rst: tcp_max_orphans (past it orphaned connections are reset and a warning \
                  printed), tcp_fin_timeout",
    },
];

/// The host's row for `kind`: its advice and source.
pub fn host(kind: Kind) -> &'static Row {
    ADVICE
        .iter()
        .find(|r| r.who == Who::Host && r.kind == kind)
        .unwrap_or(&FALLBACK)
}

impl Row {
    /// Where the row was checked, and the settings it cites for `server`.
    pub fn source(&self, server: Option<Server>) -> String {
        let mut out: Vec<&str> = vec![self.checked];
        for s in SETTINGS
            .iter()
            .filter(|s| Some(s.server) == server.map(Server::settings))
        {
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
        .or_else(|| {
            peer.filter(|s| s.is_http())
                .and_then(|_| find(Who::Peer(Server::Http)))
        })
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
