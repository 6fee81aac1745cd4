//! Findings: pure functions from a snapshot to what is wrong, who owns it,
//! and what to do. No I/O and no clock: ages come from `tcp_info` and the
//! snapshot, so fixture tests and live tests check the same code.
//!
//! One file per family of findings: `sockets.rs` (per-connection
//! pathologies, grouped by port), `listen.rs` (listeners), `limits.rs`
//! (descriptors, ports and kernel tables near their limits). `advice.rs`
//! holds the remediation text, tailored to the server that owns the sockets.

mod across;
mod advice;
mod limits;
mod listen;
mod pointers;
mod sockets;
mod waiting;

pub use across::across;
pub use sockets::healthy;
pub use waiting::blamed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::model::{Direction, Snapshot, Socket, Source, TcpState};

use crate::units::human;
pub use advice::Server;
pub use pointers::{hint, pointers};

/// A listed socket's age: the oldest its findings among `kinds` quote,
/// else the kernel's age of its state. What the table, the Markdown and
/// `kill --older-than` go by.
pub fn age_of(
    kinds: impl IntoIterator<Item = Kind>,
    s: &Socket,
    host: &crate::model::Host,
) -> Option<u32> {
    kinds
        .into_iter()
        .filter_map(|k| sockets::age(k, s, host))
        .max()
        .or_else(|| state_age(s, host))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    CloseWait,
    HalfOpen,
    PeerNotReading,
    AppNotReading,
    AcceptQueueFull,
    IdleNoKeepalive,
    FdExhaustion,
    EphemeralPortExhaustion,
    TimeWaitPressure,
    OrphanPressure,
    SynBacklog,
    FinWait2,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::CloseWait,
        Kind::HalfOpen,
        Kind::PeerNotReading,
        Kind::AppNotReading,
        Kind::AcceptQueueFull,
        Kind::IdleNoKeepalive,
        Kind::FdExhaustion,
        Kind::EphemeralPortExhaustion,
        Kind::TimeWaitPressure,
        Kind::OrphanPressure,
        Kind::SynBacklog,
        Kind::FinWait2,
    ];

    /// When the finding is raised, in a sentence (the man page's list).
    pub fn when(self) -> &'static str {
        match self {
            Kind::CloseWait => {
                "CLOSE_WAIT older than --stall: the peer closed, the owner never did (or, still in the accept \
                 queue, nobody accepted it). Critical from --critical-count sockets."
            }
            Kind::HalfOpen => {
                "The peer is gone: unacknowledged data retransmitted --retransmits times (or backoff that high), \
                 keepalive or zero-window probes unanswered, or a SYN retried twice."
            }
            Kind::PeerNotReading => {
                "Send-Q stuck for --stall while the peer answers but takes nothing: a client that does not read."
            }
            Kind::AppNotReading => {
                "Recv-Q not read for --stall: requests arrived and no worker reads them."
            }
            Kind::AcceptQueueFull => {
                "A listener's accept queue at half its backlog (warning) or full (critical), or whose oldest \
                 connection has waited --stall to be accepted."
            }
            Kind::IdleNoKeepalive => {
                "ESTABLISHED without data for --idle and without a keepalive timer."
            }
            Kind::FdExhaustion => {
                "A process at --fd-warn or --fd-critical of its RLIMIT_NOFILE, or the host of fs.file-max."
            }
            Kind::EphemeralPortExhaustion => {
                "Outbound sockets to one destination using --pressure-warn of net.ipv4.ip_local_port_range."
            }
            Kind::TimeWaitPressure => "TIME_WAIT sockets near net.ipv4.tcp_max_tw_buckets.",
            Kind::OrphanPressure => "Orphaned sockets near net.ipv4.tcp_max_orphans.",
            Kind::SynBacklog => {
                "SYN_RECV on a port near min(backlog, net.ipv4.tcp_max_syn_backlog)."
            }
            Kind::FinWait2 => {
                "FIN_WAIT2 held by its process past --stall (it never times out), or orphaned (information: \
                 the peer does not close)."
            }
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::CloseWait => "close_wait",
            Kind::HalfOpen => "half_open",
            Kind::PeerNotReading => "peer_not_reading",
            Kind::AppNotReading => "app_not_reading",
            Kind::AcceptQueueFull => "accept_queue_full",
            Kind::IdleNoKeepalive => "idle_no_keepalive",
            Kind::FdExhaustion => "fd_exhaustion",
            Kind::EphemeralPortExhaustion => "ephemeral_port_exhaustion",
            Kind::TimeWaitPressure => "time_wait_pressure",
            Kind::OrphanPressure => "orphan_pressure",
            Kind::SynBacklog => "syn_backlog",
            Kind::FinWait2 => "fin_wait2",
        }
    }
}

/// A set of kinds in two bytes: the findings one socket is part of, kept
/// for every listed socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    pub fn insert(&mut self, k: Kind) {
        self.0 |= 1 << k as u16;
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL
            .into_iter()
            .filter(move |k| self.0 & (1 << *k as u16) != 0)
    }
}

/// The thresholds the rules use; each is a command-line flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// ESTABLISHED with no data either way this long is idle.
    pub idle: Duration,
    /// A queue without progress this long is stuck (unread Recv-Q, zero
    /// window, CLOSE_WAIT age).
    pub stall: Duration,
    /// Retransmissions (or backoff) that make unacked data a dead peer.
    pub retransmits: u8,
    /// A socket finding with this many sockets is critical.
    pub critical_count: u32,
    /// FD use ratios (open / limit).
    pub fd_warn: f64,
    pub fd_critical: f64,
    /// Use ratios of kernel tables: local ports, TIME_WAIT buckets, orphans,
    /// SYN backlog, accept queue.
    pub pressure_warn: f64,
    pub pressure_critical: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            idle: Duration::from_secs(300),
            stall: Duration::from_secs(10),
            retransmits: 3,
            critical_count: 100,
            fd_warn: 0.8,
            fd_critical: 0.95,
            pressure_warn: 0.5,
            pressure_critical: 0.9,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub count: u32,
    pub ports: Vec<u16>,
    pub pids: Vec<u32>,
    /// Inbound (a server's port) or outbound (toward `remote`), for the
    /// findings about connections; `None` for a process or the host.
    pub direction: Option<Direction>,
    /// The remote endpoint of an outbound finding.
    pub remote: Option<SocketAddr>,
    /// The oldest concerned socket's age, as its rule tells it (ms).
    pub oldest_ms: Option<u32>,
    /// The network namespace's label, when it is not zombiescan's own.
    pub netns: Option<String>,
    /// The unix socket a finding is about (a listener's name, `@name` for
    /// an abstract one), as bytes from outside.
    pub path: Option<Vec<u8>>,
    /// The figures of this kind that triggered it, under stable
    /// snake_case names (the fields above join them on the wire).
    pub evidence: BTreeMap<&'static str, Value>,
    pub explanation: String,
    pub remediation: String,
    /// Where the server-specific advice was checked (a doc or source
    /// line); empty when the finding has none.
    pub advice_source: String,
    /// Indices into `Snapshot::sockets` of the sockets concerned.
    pub sockets: Vec<u32>,
    /// Indices into `Snapshot::unix` of the unix sockets concerned.
    pub unix: Vec<u32>,
    /// What the blamed process waits on: the likely cause, one hop away.
    pub waiting_on: Option<WaitingOn>,
    /// Who it blames, in words ("uvicorn (workers, pids 12, 13)"), for a
    /// one-line verdict; bytes from outside: rendered through the sanitizer.
    pub who: Option<String>,
}

/// A blamed process's connection that sent a request and has waited longer
/// than `--stall` for any reply.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingOn {
    pub pid: u32,
    pub fd: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The server at the other end, by its well-known port.
    pub peer_server: Option<&'static str>,
    /// Since the request was sent, with nothing received (ms).
    pub waited_ms: u32,
    /// The call the process's thread is blocked in, and whether on that
    /// very socket.
    pub syscall: Option<String>,
    pub on_socket: bool,
    pub wchan: Option<String>,
}

impl Finding {
    /// A finding of `kind` with its words; the rest is empty until the
    /// rule sets it.
    pub fn new(
        kind: Kind,
        severity: Severity,
        count: u32,
        (explanation, remediation): (String, String),
    ) -> Finding {
        Finding {
            kind,
            severity,
            count,
            ports: Vec::new(),
            pids: Vec::new(),
            direction: None,
            remote: None,
            oldest_ms: None,
            netns: None,
            path: None,
            evidence: BTreeMap::new(),
            explanation,
            remediation,
            advice_source: String::new(),
            sockets: Vec::new(),
            unix: Vec::new(),
            waiting_on: None,
            who: None,
        }
    }
}

/// Every finding for a snapshot, most severe first.
pub fn classify(snap: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    sockets::classify(snap, t, &mut out);
    listen::classify(snap, t, &mut out);
    limits::classify(snap, t, &mut out);
    link(snap, &mut out);
    waiting::attach(snap, t, &mut out);
    // A finding from another namespace says which.
    if !snap.netns.own {
        let label = snap.netns.label();
        for f in &mut out {
            f.netns = Some(label.clone());
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.kind.cmp(&b.kind))
            .then(a.ports.cmp(&b.ports))
    });
    out
}

/// Findings whose cause is another finding of this report say so: the
/// orphaned FIN_WAIT2 toward a server of this scan that leaves its side in
/// CLOSE_WAIT.
fn link(snap: &Snapshot, out: &mut [Finding]) {
    let close_wait: Vec<(u16, Vec<u32>)> = out
        .iter()
        .filter(|f| f.kind == Kind::CloseWait && f.direction == Some(Direction::Inbound))
        .map(|f| (f.ports[0], f.pids.clone()))
        .collect();
    let listening = snap.listening_ports();
    // Only toward a server of this scan: an inbound FIN_WAIT2 is this
    // host's server waiting on its clients.
    for f in out.iter_mut().filter(|f| {
        f.kind == Kind::FinWait2
            && f.direction == Some(Direction::Outbound)
            && f.evidence.get("orphaned").is_some_and(|o| *o == f.count)
    }) {
        let Some(port) = f.ports.first().copied() else {
            continue;
        };
        let fin_timeout = fin_timeout(snap);
        let pids = |p: &[u32]| p.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        if let Some((_, p)) = close_wait.iter().find(|(cp, _)| *cp == port) {
            f.remediation = format!(
                "Nothing leaks on this side: the peer is the server on port {port} in this scan (pids {}), whose \
                 close_wait finding in this report is the cause. Lowering {fin_timeout} frees these sooner.",
                pids(p)
            );
            f.evidence.insert("peer_finding", "close_wait".into());
        } else if listening.contains(&port) {
            f.remediation = format!(
                "Nothing leaks on this side: the peer is the server on port {port} in this scan; its side of \
                 these connections is still open (CLOSE_WAIT younger than --stall, or a request in progress). \
                 Lowering {fin_timeout} frees these sooner."
            );
        }
    }
}

/// `net.ipv4.tcp_fin_timeout`, with its value when it was read.
fn fin_timeout(snap: &Snapshot) -> String {
    snap.host
        .sysctl_u64("net.ipv4.tcp_fin_timeout")
        .map_or("net.ipv4.tcp_fin_timeout".to_string(), |v| {
            format!("net.ipv4.tcp_fin_timeout = {v} s")
        })
}

/// What the /proc source keeps these rules from checking, for the report.
pub fn unchecked(snap: &Snapshot) -> Option<&'static str> {
    (snap.source == Source::Proc).then_some(
        "source proc: app_not_reading and idle_no_keepalive not checked, \
         close_wait, peer_not_reading and half_open judged without ages (no tcp_info)",
    )
}

/// Milliseconds as seconds with one decimal, for evidence.
fn secs(ms: u32) -> Value {
    crate::units::secs(ms).into()
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

fn severity_by_ratio(r: f64, warn: f64, critical: f64) -> Option<Severity> {
    if r >= critical {
        Some(Severity::Critical)
    } else if r >= warn {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// A `tcp_info` age (ms since an event), or `None` when the event never
/// happened. The kernel keeps each event as a jiffies stamp, 0 until it
/// first happens, and jiffies start 5 minutes before zero
/// (`INITIAL_JIFFIES` in include/linux/jiffies.h): the age of an event
/// that never happened is the uptime less 300 s, or wraps to more than the
/// uptime in the first 5 minutes. Neither is an age a socket can have.
fn known(ms: Option<u32>, uptime_ms: Option<u64>) -> Option<u32> {
    let ms = ms?;
    let Some(up) = uptime_ms else {
        return Some(ms);
    };
    let never = up.saturating_sub(300_000);
    let m = u64::from(ms);
    (m <= up && m.abs_diff(never) > 1_500).then_some(ms)
}

/// The socket's time since the peer last sent anything (data or ACK). With
/// a keepalive timer running, the peer's answers to our probes refresh the
/// ACK time (docker-proxy probes every 15 s): only its data counts then.
fn since_peer(s: &Socket, uptime_ms: Option<u64>) -> Option<u32> {
    let ti = s.tcp_info.as_ref()?;
    let data = known(ti.last_data_recv(), uptime_ms);
    let ack = known(ti.last_ack_recv(), uptime_ms)
        .filter(|_| s.timer.kind != crate::model::TimerKind::Keepalive || data.is_none());
    match (data, ack) {
        (Some(d), Some(a)) => Some(d.min(a)),
        (d, a) => d.or(a),
    }
}

/// How long the kernel says `s` has been in its state, where it can:
/// CLOSE_WAIT and FIN_WAIT2 since the peer last sent anything (its FIN, or
/// the ACK of ours), TIME_WAIT from its 60 s timer (TCP_TIMEWAIT_LEN), an
/// orphaned FIN_WAIT2 (a timewait socket, no tcp_info) from its timer of
/// net.ipv4.tcp_fin_timeout. The same ages the findings quote, so that a
/// watch and a finding agree.
pub fn state_age(s: &Socket, host: &crate::model::Host) -> Option<u32> {
    match s.state {
        TcpState::CloseWait | TcpState::FinWait2 if s.tcp_info.is_some() => {
            since_peer(s, host.uptime_ms)
        }
        TcpState::FinWait2 if s.timer.kind == crate::model::TimerKind::TimeWait => {
            // The kernel arms it with tcp_fin_timeout when the orphan
            // enters FIN_WAIT2 (longer only past an RTO of 17 s: then
            // this is a lower bound).
            let fin_ms = host
                .sysctl_u64("net.ipv4.tcp_fin_timeout")?
                .saturating_mul(1000);
            let fin_ms = u32::try_from(fin_ms).unwrap_or(u32::MAX);
            Some(fin_ms.saturating_sub(s.timer.expires_ms))
        }
        TcpState::TimeWait => Some(60_000u32.saturating_sub(s.timer.expires_ms)),
        _ => None,
    }
}

/// The least time a SYN_SENT socket has existed: it retried its SYN
/// `retries` times, each at least 1 s (`TCP_TIMEOUT_INIT`) after the last.
/// Not more: kernels with `net.ipv4.tcp_syn_linear_timeouts` (6.16 and
/// later, default 4) retry the first SYNs every second, not with doubling
/// waits, as seen on this project's test kernel.
fn syn_sent_at_least(retries: u8) -> u32 {
    u32::from(retries) * 1000
}

/// An unaccepted connection: ESTABLISHED or CLOSE_WAIT with no inode is
/// still in its listener's accept queue. (A socket closed by its process
/// leaves those states: close() sends FIN, or RST with unread data.)
pub fn queued(s: &Socket) -> bool {
    s.inode == 0 && matches!(s.state, TcpState::Established | TcpState::CloseWait)
}
