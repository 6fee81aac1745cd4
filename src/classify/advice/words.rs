//! The words of each finding: how many, how old, who holds them, then the
//! picked row's cause and fix, filled with the server's settings.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::{Ctx, Server, Who, figures, fill, host, pick};
use crate::classify::Kind;
use crate::model::{Direction, Process};

/// A sysctl's value and unit, or "unknown".
fn unknown(v: Option<u64>, unit: &str) -> String {
    v.map_or("unknown".to_string(), |v| format!("{v}{unit}"))
}

/// The sentence on a supervisor that holds the listener and never
/// accepts, with a space before it; empty when there is none.
fn supervised(c: &Ctx) -> String {
    c.supervisor
        .as_ref()
        .map_or(String::new(), |s| format!(" {s}"))
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
    // Only what a kill would relieve: a connection in an accept queue
    // keeps its slot until the owner accepts it, destroyed or not.
    if c.holders.pids.is_empty() {
        return String::new();
    }
    let root = if c.as_root() { "" } else { " (as root)" };
    let mut s = format!(
        "Relief now{root}: zombiescan kill {}--port {} --finding {} lists them, and with --yes resets them: the peer gets \
         a RST, the owner's next write on them fails with ECONNABORTED (a read too, unless the peer had closed: then it \
         reads end-of-file, as before), the kernel frees them.",
        c.netns_arg,
        c.port,
        kind.name()
    );
    if c.holders.queued > 0 {
        s.push_str(
            " Those still in the accept queue are left alone: destroying one frees no queue slot.",
        );
    }
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
             the cause is that nothing accepts, not a forgotten close().{}",
            h.queued,
            verb(h.queued, "is", "are"),
            c.place,
            c.listener_who,
            verb(h.queued, "it", "them"),
            verb(h.queued, "it holds", "they hold"),
            supervised(c),
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
    // The generic cause is a forgotten close(): not when every socket is
    // still queued, which the sentence above already explained.
    let generic = pick(Kind::CloseWait, c.dir, c.server, c.peer).who == Who::Any;
    if !(generic && h.queued >= n) {
        explanation = join(explanation, &cause);
    }
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
        (Some(a), false) if get("retransmitting") > 0 => {
            format!(" (the oldest unanswered for at least {a})")
        }
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
        "{} {} {send_q} bytes waiting to be sent that the peer does not take: it answers (it acknowledges \
         our probes or retransmissions) but takes nothing in{}. {} The kernel keeps probing, and {} stays \
         tied up writing.",
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
            figures(
                host(Kind::FinWait2).fix,
                &[
                    (
                        "peer",
                        &match c.dir {
                            // This host's server closed; its clients did not.
                            Direction::Inbound => {
                                format!("the clients of {} hold their side", c.place)
                            }
                            Direction::Outbound => format!("the peer {} holds its side", c.place),
                        },
                    ),
                    ("tcp_fin_timeout", &ft),
                ],
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
             handshakes that {} does not accept.{} When it is full new connections are dropped (ListenOverflows \
             {} {}).",
            c.place,
            c.who,
            supervised(c),
            overflows.0,
            overflows.1
        ),
        &cause,
    );
    let smc = somaxconn.map_or("net.core.somaxconn".to_string(), |v| {
        format!("net.core.somaxconn = {v}")
    });
    let fix = join(fix, &format!("The queue's limit is min(backlog, {smc})."));
    (explanation, fix)
}

/// Where the claims of [`unix_accept_queue_full`] were checked.
pub const UNIX_FULL_SOURCE: &str = "net/unix/af_unix.c unix_stream_connect (unix_recvq_full: a \
non-blocking connect fails with EAGAIN once the queue holds more than the backlog); nginx \
ngx_event_connect_peer (connect() failed, a 502); listen(2) and net.core.somaxconn";

/// A unix listener's full queue, and the proxy in front of it (`links`:
/// the scanned ports that pass to it).
pub fn unix_accept_queue_full(
    c: &Ctx,
    queue: u64,
    backlog: u64,
    somaxconn: Option<u64>,
    links: &[&crate::model::UnixLink],
) -> (String, String) {
    let (cause, fix) = c.advice(Kind::AcceptQueueFull);
    let mut explanation = String::new();
    for l in links {
        let how = match &l.how {
            crate::model::UnixLinkHow::Connected => "it holds connections to it".to_string(),
            crate::model::UnixLinkHow::Config(file) => format!("its configuration {file} names it"),
        };
        explanation.push_str(&format!(
            "{} on port {} passes to {} ({how}). ",
            c.name_of(&l.proxy_pids),
            l.port,
            c.place
        ));
    }
    explanation.push_str(&format!(
        "The accept queue of {} holds {queue} {} for a backlog of {backlog}: {} does not accept them.{} Past \
         the backlog a proxy's connect fails at once with EAGAIN (nginx: \"(11: Resource temporarily \
         unavailable) while connecting to upstream\", a 502 to its client), with no retry and no kernel \
         counter: the errors start the moment the queue is full.",
        c.place,
        if queue == 1 { "connection" } else { "connections" },
        c.who,
        supervised(c)
    ));
    let explanation = join(explanation, &cause);
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
        figures(
            host(Kind::SynBacklog).fix,
            &[
                ("tcp_syncookies", &unknown(syncookies, "")),
                ("tcp_max_syn_backlog", &unknown(max_syn, "")),
            ],
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
        format!(
            "The host has {used} of fs.file-max {max} file handles allocated ({pct}): past it every process fails to open files and sockets (ENFILE)."
        ),
        host(Kind::FdExhaustion).fix.to_string(),
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
        figures(
            host(Kind::EphemeralPortExhaustion).fix,
            &[("ip_local_port_range", &format!("{lo} {hi}"))],
        ),
    )
}

pub fn time_wait_pressure(n: u64, max: u64, pct: &str) -> (String, String) {
    (
        format!(
            "{n} TIME_WAIT sockets for net.ipv4.tcp_max_tw_buckets = {max} ({pct}): past the limit the kernel drops \
             TIME_WAIT state early (\"time wait bucket table overflow\")."
        ),
        host(Kind::TimeWaitPressure).fix.to_string(),
    )
}

pub fn orphan_pressure(n: u64, max: u64, pct: &str, fin_timeout: Option<u64>) -> (String, String) {
    (
        format!(
            "{n} orphaned sockets (closed by their process, still in the kernel) for net.ipv4.tcp_max_orphans = {max} \
             ({pct}): past the limit the kernel resets connections (\"too many orphaned sockets\")."
        ),
        figures(
            host(Kind::OrphanPressure).fix,
            &[("tcp_fin_timeout", &unknown(fin_timeout, " s"))],
        ),
    )
}
