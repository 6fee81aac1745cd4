//! The JSON document: versioned wire types, apart from the model so that the
//! model can change without breaking scripts. `schema/zombiescan.schema.json`
//! describes it; the tests validate real output against that file.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::classify::KindSet;
use crate::model::{Family, Snapshot, StateCounts, TcpInfo, UnixLinkHow, UnixSocket};
use crate::report::{Listed, Report};
use crate::units::rfc3339;

/// Bumped when a field changes meaning or disappears; adding a field does
/// not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// The document; `S` is how the sockets are held: read back as a `Vec`,
/// written as a stream (100,000 flagged sockets are never all in memory as
/// JSON values).
#[derive(Debug, Serialize, Deserialize)]
pub struct Document<S = Vec<SocketJson>> {
    pub schema_version: u32,
    pub generated_at: String,
    pub host: Host,
    pub source: String,
    /// Which walk found the owners: "bpf" (the kernel's) or "proc".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners_from: Option<String>,
    pub netns: Netns,
    pub filter: Filter,
    pub limitations: Vec<String>,
    /// Where to look instead (another namespace holds the server).
    pub hints: Vec<String>,
    pub summary: Summary,
    pub ports: Vec<Port>,
    /// Unix listeners with a queue or a finding, or asked for (`--path`,
    /// or behind a scanned port).
    #[serde(default)]
    pub paths: Vec<PathJson>,
    pub processes: Vec<Process>,
    pub findings: Vec<Finding>,
    /// `--watch`: what changed since the previous sample and the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchJson>,
    pub sockets: S,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WatchJson {
    pub sample: u32,
    pub elapsed_s: f64,
    /// The states present now or changed since the first sample.
    pub states: BTreeMap<String, WatchState>,
    /// The drop counters (ListenOverflows, …) that moved since the first
    /// sample: connections refused or timed out meanwhile.
    #[serde(default)]
    pub drops: Vec<WatchDrop>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WatchDrop {
    pub counter: String,
    pub since_previous: i64,
    pub since_start: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WatchState {
    pub now: u32,
    pub since_previous: i64,
    pub since_start: i64,
    pub per_minute: f64,
    /// The change over the last minute (the table's LAST MIN).
    #[serde(default)]
    pub last_minute: i64,
    /// How long the oldest socket in the state has been seen in it.
    pub oldest_seen_s: Option<f64>,
    /// It was there at the first sample: at least that old.
    pub at_least: bool,
}

/// The listed sockets of a report, each turned into its wire form only as
/// it is written.
pub struct ListedSockets<'r, 'a>(&'r Report<'a>);

impl Serialize for ListedSockets<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let snap = self.0.snapshot;
        ser.collect_seq(
            self.0
                .sockets()
                .map(|l| socket(snap, &l))
                .chain(self.0.unix_sockets().map(|(u, k)| unix_socket(snap, u, k))),
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub files_allocated: Option<u64>,
    pub files_max: Option<u64>,
    pub sockstat: BTreeMap<String, BTreeMap<String, u64>>,
    /// The sockstat counters ("TCP.orphan") that are the host's, the same
    /// in every namespace: never sum them across namespaces.
    #[serde(default)]
    pub sockstat_host_wide: Vec<String>,
    pub tcp_ext: BTreeMap<String, i64>,
    pub tcp: BTreeMap<String, i64>,
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Netns {
    pub inode: Option<u64>,
    /// Its `ip netns` name.
    pub name: Option<String>,
    pub container: Option<Container>,
    /// The Kubernetes pod whose network it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<crate::model::Pod>,
    /// zombiescan's own namespace (the host's, usually).
    pub own: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Container {
    pub runtime: String,
    pub id: String,
    pub short_id: String,
    pub name: Option<String>,
}

/// `--all-netns`: one document per network namespace.
#[derive(Debug, Serialize, Deserialize)]
pub struct AllNamespaces<S = Vec<SocketJson>> {
    pub schema_version: u32,
    pub generated_at: String,
    pub namespaces: Vec<Document<S>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Filter {
    pub ports: Vec<u16>,
    pub pids: Vec<u32>,
    pub processes: Vec<String>,
    pub states: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// Counts for every state, in the kernel's order, under the kernel's names.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ByState {
    pub established: u32,
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub fin_wait1: u32,
    pub fin_wait2: u32,
    pub time_wait: u32,
    pub close: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub listen: u32,
    pub closing: u32,
}

impl From<&StateCounts> for ByState {
    fn from(c: &StateCounts) -> ByState {
        let [
            established,
            syn_sent,
            syn_recv,
            fin_wait1,
            fin_wait2,
            time_wait,
            close,
            close_wait,
            last_ack,
            listen,
            closing,
        ] = c.0;
        ByState {
            established,
            syn_sent,
            syn_recv,
            fin_wait1,
            fin_wait2,
            time_wait,
            close,
            close_wait,
            last_ack,
            listen,
            closing,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ByFamily {
    pub ipv4: u32,
    pub ipv6: u32,
    /// Unix stream and seqpacket sockets (not in `total`).
    #[serde(default)]
    pub unix: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WaitingOnJson {
    pub pid: u32,
    pub fd: u32,
    pub local: String,
    pub remote: String,
    /// The server at the other end, by its well-known port.
    pub peer_server: Option<String>,
    /// Since the request was sent, with nothing received.
    pub seconds: f64,
    /// The call a thread of the process is blocked in.
    pub syscall: Option<String>,
    /// That thread waits on this very connection.
    pub on_socket: bool,
}

/// A unix listener: the counterpart of a port.
#[derive(Debug, Serialize, Deserialize)]
pub struct PathJson {
    /// Its name as `ss` writes it: a path, or `@name` for an abstract one.
    pub path: String,
    /// stream or seqpacket.
    #[serde(rename = "type")]
    pub kind: String,
    /// Connections waiting to be accepted and the backlog; null when the
    /// source shows no queues (/proc/net/unix).
    pub queue: Option<u32>,
    pub backlog: Option<u32>,
    /// Connections it accepted that are still open.
    pub accepted: u32,
    pub pids: Vec<u32>,
    /// The scanned ports that pass to it, and how that was found.
    pub behind: Vec<BehindJson>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BehindJson {
    pub port: u16,
    pub pids: Vec<u32>,
    /// "connections", or "config" with the file that names it.
    pub how: String,
    pub file: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    pub total: u32,
    pub by_state: ByState,
    pub by_family: ByFamily,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    pub direction: String,
    /// The remote address of an outbound group; null for inbound.
    pub remote: Option<String>,
    pub total: u32,
    pub by_state: ByState,
    pub recv_q: u64,
    pub send_q: u64,
    pub pids: Vec<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
    pub uid: Option<u32>,
    pub fds_open: u32,
    pub fd_limit: Option<u64>,
    pub sockets: u32,
    pub by_state: ByState,
    /// Unix sockets of the listeners in `paths`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unix_sockets: u32,
    /// In a Kubernetes pod: the name of its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub severity: String,
    pub count: u32,
    pub ports: Vec<u16>,
    pub pids: Vec<u32>,
    pub evidence: BTreeMap<String, serde_json::Value>,
    pub explanation: String,
    pub remediation: String,
    /// Where the server-specific advice was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_source: Option<String>,
    /// What the blamed process waits on: its connection elsewhere that
    /// sent a request and has had no reply for longer than --stall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<WaitingOnJson>,
    /// Typed where `evidence` has them as figures: inbound or outbound
    /// (null for a process or the host), the oldest socket's age, the
    /// namespace when not zombiescan's own.
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub oldest_s: Option<f64>,
    #[serde(default)]
    pub netns: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Timer {
    pub kind: String,
    pub expires_ms: u64,
    pub count: u8,
}

/// `struct tcp_info` fields under their kernel names; null when the kernel
/// did not send them. Times in ms (`last_*`), µs (`rto`, `rtt`, `rttvar`).
#[derive(Debug, Serialize, Deserialize)]
pub struct TcpInfoJson {
    pub retransmits: Option<u8>,
    pub probes: Option<u8>,
    pub backoff: Option<u8>,
    pub rto: Option<u32>,
    pub unacked: Option<u32>,
    pub lost: Option<u32>,
    pub last_data_sent: Option<u32>,
    pub last_data_recv: Option<u32>,
    pub last_ack_recv: Option<u32>,
    pub rtt: Option<u32>,
    pub rttvar: Option<u32>,
    pub total_retrans: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub notsent_bytes: Option<u32>,
    pub snd_wnd: Option<u32>,
    pub rcv_wnd: Option<u32>,
}

impl From<&TcpInfo> for TcpInfoJson {
    fn from(t: &TcpInfo) -> TcpInfoJson {
        TcpInfoJson {
            retransmits: t.retransmits(),
            probes: t.probes(),
            backoff: t.backoff(),
            rto: t.rto(),
            unacked: t.unacked(),
            lost: t.lost(),
            last_data_sent: t.last_data_sent(),
            last_data_recv: t.last_data_recv(),
            last_ack_recv: t.last_ack_recv(),
            rtt: t.rtt(),
            rttvar: t.rttvar(),
            total_retrans: t.total_retrans(),
            bytes_acked: t.bytes_acked(),
            bytes_received: t.bytes_received(),
            notsent_bytes: t.notsent_bytes(),
            snd_wnd: t.snd_wnd(),
            rcv_wnd: t.rcv_wnd(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SocketJson {
    pub family: String,
    pub state: String,
    pub local: String,
    pub remote: String,
    pub recv_q: u32,
    pub send_q: u32,
    pub timer: Timer,
    pub uid: u32,
    pub inode: u64,
    pub cookie: Option<u64>,
    pub pids: Vec<u32>,
    /// The kinds of finding this socket is part of.
    pub findings: Vec<String>,
    pub tcp_info: Option<TcpInfoJson>,
    /// Its age as the table shows it: the oldest its findings quote, else
    /// the kernel's age of its state; null when unknown.
    #[serde(default)]
    pub age_s: Option<f64>,
}

/// A unix socket in the form of the others: `local` is its name (`*`
/// unnamed), `remote` `*`; no timer, cookie or tcp_info.
fn unix_socket(snap: &Snapshot, u: &UnixSocket, kinds: KindSet) -> SocketJson {
    SocketJson {
        family: "unix".into(),
        state: u.state.name().into(),
        local: lossy(&u.path()),
        remote: "*".into(),
        recv_q: u.recv_q,
        send_q: u.send_q,
        timer: Timer {
            kind: "off".into(),
            expires_ms: 0,
            count: 0,
        },
        uid: 0,
        inode: u.inode,
        cookie: None,
        pids: snap.unix_owners(u).to_vec(),
        findings: kinds.iter().map(|k| k.name().to_string()).collect(),
        tcp_info: None,
        age_s: None,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn socket(snap: &Snapshot, l: &Listed) -> SocketJson {
    let (s, kinds) = (l.socket, l.kinds);
    SocketJson {
        age_s: l.age_ms.map(crate::units::secs),
        family: match s.family {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
        .into(),
        state: s.state.name().into(),
        local: s.local.to_string(),
        remote: s.remote.to_string(),
        recv_q: s.recv_q,
        send_q: s.send_q,
        timer: Timer {
            kind: s.timer.kind.name().into(),
            expires_ms: u64::from(s.timer.expires_ms),
            count: s.timer.count,
        },
        uid: s.uid,
        inode: s.inode,
        cookie: s.cookie.map(u64::from),
        pids: snap.owners_of(s).to_vec(),
        findings: kinds.iter().map(|k| k.name().to_string()).collect(),
        tcp_info: s.tcp_info.as_deref().map(TcpInfoJson::from),
    }
}

/// Builds the document for a report.
pub fn document<'r, 'a>(r: &'r Report<'a>) -> Document<ListedSockets<'r, 'a>> {
    let snap = r.snapshot;
    let h = &snap.host;
    Document {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(snap.captured_at),
        host: Host {
            hostname: h.hostname.clone(),
            kernel: h.kernel.clone(),
            files_allocated: h.files_allocated,
            files_max: h.files_max,
            sockstat: h.sockstat.clone(),
            sockstat_host_wide: crate::model::Host::HOST_WIDE_SOCKSTAT
                .iter()
                .filter(|(s, k)| h.sockstat(s, k).is_some())
                .map(|(s, k)| format!("{s}.{k}"))
                .collect(),
            tcp_ext: h.tcp_ext.clone(),
            tcp: h.tcp.clone(),
            sysctls: h.sysctls.clone(),
        },
        source: snap.source.name().into(),
        owners_from: snap.owners_from.map(|o| o.name().into()),
        netns: Netns {
            inode: snap.netns.inode,
            name: snap.netns.name.clone(),
            container: snap.netns.container.as_ref().map(|c| Container {
                runtime: c.runtime.clone(),
                id: c.id.clone(),
                short_id: c.short_id().into(),
                name: c.name.clone(),
            }),
            pod: snap.netns.pod.clone(),
            own: snap.netns.own,
        },
        hints: r.hints.clone(),
        filter: Filter {
            ports: snap.filter.ports.clone(),
            pids: snap.filter.pids.clone(),
            processes: snap.filter.processes.clone(),
            states: snap
                .filter
                .states
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            paths: snap.filter.paths.iter().map(|p| lossy(p)).collect(),
        },
        limitations: r.limitations.clone(),
        summary: Summary {
            total: r.summary.total,
            by_state: (&r.summary.by_state).into(),
            by_family: ByFamily {
                ipv4: r.summary.ipv4,
                ipv6: r.summary.ipv6,
                unix: r.summary.unix,
            },
        },
        paths: r
            .unix
            .iter()
            .map(|g| PathJson {
                path: lossy(&g.path),
                kind: g.listener.kind.name().into(),
                queue: g.queue.map(|q| q.0),
                backlog: g.queue.map(|q| q.1),
                accepted: g.accepted,
                pids: g.pids.clone(),
                behind: g
                    .behind
                    .iter()
                    .map(|l| BehindJson {
                        port: l.port,
                        pids: l.proxy_pids.clone(),
                        how: match l.how {
                            UnixLinkHow::Connected => "connections".into(),
                            UnixLinkHow::Config(_) => "config".into(),
                        },
                        file: match &l.how {
                            UnixLinkHow::Connected => None,
                            UnixLinkHow::Config(f) => Some(f.clone()),
                        },
                    })
                    .collect(),
            })
            .collect(),
        ports: r
            .ports
            .iter()
            .map(|g| Port {
                port: g.port,
                direction: g.direction.name().into(),
                remote: g.remote.map(|ip| ip.to_string()),
                total: g.by_state.total(),
                by_state: (&g.by_state).into(),
                recv_q: g.recv_q,
                send_q: g.send_q,
                pids: g.pids.clone(),
            })
            .collect(),
        processes: r
            .processes
            .iter()
            .map(|p| Process {
                pid: p.process.pid,
                comm: lossy(&p.process.comm),
                cmdline: lossy(&p.process.cmdline),
                uid: p.process.uid,
                fds_open: p.process.fds_open,
                fd_limit: p.process.fd_limit,
                sockets: p.sockets,
                by_state: (&p.by_state).into(),
                unix_sockets: p.unix,
                container: p.process.container.clone(),
            })
            .collect(),
        findings: r
            .findings
            .iter()
            .map(|f| Finding {
                kind: f.kind.name().into(),
                severity: f.severity.name().into(),
                count: f.count,
                ports: f.ports.clone(),
                pids: f.pids.clone(),
                evidence: super::evidence(f)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                explanation: f.explanation.clone(),
                remediation: f.remediation.clone(),
                advice_source: (!f.advice_source.is_empty()).then(|| f.advice_source.clone()),
                direction: f.direction.map(|d| d.name().to_string()),
                oldest_s: f.oldest_ms.map(crate::units::secs),
                netns: f.netns.clone(),
                waiting_on: f.waiting_on.as_ref().map(|w| WaitingOnJson {
                    pid: w.pid,
                    fd: w.fd,
                    local: w.local.to_string(),
                    remote: w.remote.to_string(),
                    peer_server: w.peer_server.map(String::from),
                    seconds: crate::units::secs(w.waited_ms),
                    syscall: w.syscall.clone(),
                    on_socket: w.on_socket,
                }),
            })
            .collect(),
        watch: r.watch.as_ref().map(|w| WatchJson {
            sample: w.sample,
            elapsed_s: w.elapsed_ms as f64 / 1000.0,
            states: crate::model::TcpState::ALL
                .into_iter()
                .map(|st| (st, w.states[st.index()]))
                .filter(|(_, c)| c.now > 0 || c.since_start != 0 || c.since_previous != 0)
                .map(|(st, c)| {
                    (
                        st.name().to_string(),
                        WatchState {
                            now: c.now,
                            since_previous: c.since_previous,
                            since_start: c.since_start,
                            per_minute: (c.per_minute * 10.0).round() / 10.0,
                            last_minute: c.last_minute,
                            oldest_seen_s: c.oldest_seen_ms.map(|ms| ms as f64 / 1000.0),
                            at_least: c.at_least,
                        },
                    )
                })
                .collect(),
            drops: w
                .drops
                .iter()
                .map(|&(counter, since_previous, since_start)| WatchDrop {
                    counter: counter.to_string(),
                    since_previous,
                    since_start,
                })
                .collect(),
        }),
        sockets: ListedSockets(r),
    }
}

pub fn write(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(r))?;
    out.write_all(b"\n")
}

/// `--all-netns`: every namespace's document in one.
pub fn write_all(reports: &[Report], out: &mut dyn Write) -> io::Result<()> {
    let generated_at = reports
        .first()
        .map(|r| rfc3339(r.snapshot.captured_at))
        .unwrap_or_default();
    let all = AllNamespaces {
        schema_version: SCHEMA_VERSION,
        generated_at,
        namespaces: reports.iter().map(document).collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &all)?;
    out.write_all(b"\n")
}
