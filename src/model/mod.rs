//! The plain data that flows from the collectors to the report.
//!
//! Every source (netlink, `/proc/net/tcp`) fills the same `Socket`; the
//! process walk fills the owners and `processes`; the host readers fill `Host`.
//! Nothing here does I/O, so a snapshot built from fixtures and one built from
//! the live kernel go through the same classification and rendering.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

mod snapshot;
mod unix;

pub use snapshot::*;
pub use unix::*;

/// TCP states with the kernel's numbering (include/net/tcp_states.h).
///
/// The kernel's `TCP_NEW_SYN_RECV` (12), a request socket, is reported as
/// `SynRecv`, as `ss` and `/proc/net/tcp` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    /// Every state, in the kernel's order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// The kernel's number for a state, NEW_SYN_RECV (12) folded into SYN_RECV.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        match n {
            12 => Some(TcpState::SynRecv),
            1..=11 => Some(Self::ALL[usize::from(n) - 1]),
            _ => None,
        }
    }

    /// The bit of this state in an inet_diag state mask (`1 << state`).
    pub fn mask_bit(self) -> u32 {
        let bit = 1u32 << (self as u32 + 1);
        if self == TcpState::SynRecv {
            bit | 1 << 12
        } else {
            bit
        }
    }

    /// Position in [`TcpState::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kernel's name, as `ss` and `/proc` documentation spell it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// Parses a kernel name, case-insensitively, `-` accepted for `_`.
    pub fn from_name(s: &str) -> Option<TcpState> {
        let s = s.to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|st| st.name() == s)
    }
}

/// Counts per state, indexed by [`TcpState::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u32; 11]);

impl StateCounts {
    pub fn add(&mut self, state: TcpState) {
        self.add_n(state, 1);
    }
    pub fn add_n(&mut self, state: TcpState, n: u32) {
        self.0[state.index()] += n;
    }
    pub fn get(&self, state: TcpState) -> u32 {
        self.0[state.index()]
    }
    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }
    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &StateCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }
    /// `(state, count)` for every state, in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// Which kernel timer is pending on a socket (`idiag_timer`, the `tr`
/// column of `/proc/net/tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerKind {
    Off,
    /// Retransmission, loss probe or reorder timer (`ss`: "on").
    Retransmit,
    /// The keepalive timer, armed only when SO_KEEPALIVE is set (or, for a
    /// LISTEN/SYN socket, the SYN-ACK timer).
    Keepalive,
    TimeWait,
    /// Zero-window probe timer (`ss`: "persist").
    Persist,
}

impl TimerKind {
    pub fn from_kernel(n: u8) -> TimerKind {
        match n {
            1 => TimerKind::Retransmit,
            2 => TimerKind::Keepalive,
            3 => TimerKind::TimeWait,
            4 => TimerKind::Persist,
            _ => TimerKind::Off,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Off => "off",
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "time_wait",
            TimerKind::Persist => "persist",
        }
    }
}

/// Six bytes, aligned to two: a [`Socket`] holds one, and 8 bytes would
/// make it 96, not 88.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C, packed(2))]
pub struct Timer {
    /// Milliseconds until the timer fires (see [`Timer::expires`]).
    pub expires_ms: u32,
    pub kind: TimerKind,
    /// Retransmissions for `Retransmit`, unanswered probes for `Keepalive`
    /// and `Persist` (`idiag_retrans`).
    pub count: u8,
}

impl Timer {
    pub const OFF: Timer = Timer {
        kind: TimerKind::Off,
        expires_ms: 0,
        count: 0,
    };

    /// Time until the timer fires.
    pub fn expires(&self) -> Duration {
        Duration::from_millis(u64::from(self.expires_ms))
    }
}

/// Declares the `struct tcp_info` fields zombiescan reads, by their offset
/// in include/uapi/linux/tcp.h: the struct, a decoder for any length, and an
/// accessor per field that is `None` when the kernel's struct ended before
/// the field (older kernels send less). Plain fields and one length; a
/// [`Socket`] holds it boxed, so that one without (a timewait or request
/// socket, a capture's from /proc) costs 8 bytes for it, not 80.
macro_rules! tcp_info {
    ($($(#[$doc:meta])* $name:ident: $t:ty = $off:expr;)*) => {
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct TcpInfo {
            /// Bytes of `struct tcp_info` the kernel sent.
            pub(crate) len: u16,
            $(pub(crate) $name: $t,)*
        }

        impl TcpInfo {
            /// Decodes the kernel's struct, whatever its length.
            pub fn decode(b: &[u8]) -> TcpInfo {
                TcpInfo {
                    len: u16::try_from(b.len()).unwrap_or(u16::MAX),
                    $($name: b
                        .get($off..$off + std::mem::size_of::<$t>())
                        .and_then(|s| s.try_into().ok())
                        .map_or(0, <$t>::from_ne_bytes),)*
                }
            }

            $($(#[$doc])*
            pub fn $name(&self) -> Option<$t> {
                (usize::from(self.len) >= $off + std::mem::size_of::<$t>()).then_some(self.$name)
            })*
        }
    };
}

tcp_info! {
    retransmits: u8 = 2;
    /// Unanswered zero-window or keepalive probes.
    probes: u8 = 3;
    backoff: u8 = 4;
    /// Retransmission timeout, microseconds.
    rto: u32 = 8;
    unacked: u32 = 24;
    lost: u32 = 32;
    /// Milliseconds since data was last sent.
    last_data_sent: u32 = 44;
    /// Milliseconds since data was last received.
    last_data_recv: u32 = 52;
    /// Milliseconds since an ACK was last received.
    last_ack_recv: u32 = 56;
    /// Smoothed round-trip time, microseconds.
    rtt: u32 = 68;
    rttvar: u32 = 72;
    total_retrans: u32 = 100;
    bytes_acked: u64 = 120;
    bytes_received: u64 = 128;
    notsent_bytes: u32 = 144;
    /// The peer's advertised receive window, bytes (Linux 5.4+).
    snd_wnd: u32 = 228;
    /// Our advertised receive window, bytes (Linux 6.2+).
    rcv_wnd: u32 = 232;
}

impl TcpInfo {
    /// The length of the struct as far as zombiescan reads it.
    pub const FULL: u16 = 236;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    pub family: Family,
    pub state: TcpState,
    pub local: Endpoint,
    pub remote: Endpoint,
    /// For LISTEN: the accept queue length. Otherwise unread bytes.
    pub recv_q: u32,
    /// For LISTEN: the accept queue limit (netlink only). Otherwise bytes
    /// not yet acknowledged by the peer.
    pub send_q: u32,
    pub timer: Timer,
    pub uid: u32,
    /// 0 for TIME_WAIT, request and orphaned sockets: no process holds them.
    pub inode: u64,
    /// The inet_diag socket cookie (netlink only).
    pub cookie: Option<NonZeroU64>,
    /// Netlink only.
    pub tcp_info: Option<Box<TcpInfo>>,
    /// The first process found holding the socket, 0 when none was (see
    /// `Snapshot::owners_of` for all of them).
    pub owner: u32,
}

/// A socket's address and port in 20 bytes, where a `SocketAddr` takes
/// 32: an IPv4 address is kept mapped into IPv6 (`::ffff:a.b.c.d`), and
/// flagged as one. Read, compared, ordered, written and serialized as the
/// `SocketAddr` it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    ip: [u8; 16],
    port: u16,
    v4: bool,
}

impl Endpoint {
    pub fn ip(&self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.ip);
        match v6.to_ipv4_mapped() {
            Some(v4) if self.v4 => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Endpoint {
        let (ip, v4) = match a.ip() {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), true),
            IpAddr::V6(v6) => (v6.octets(), false),
        };
        Endpoint {
            ip,
            port: a.port(),
            v4,
        }
    }
}

impl From<Endpoint> for SocketAddr {
    fn from(e: Endpoint) -> SocketAddr {
        e.addr()
    }
}

impl PartialEq<SocketAddr> for Endpoint {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.addr() == *other
    }
}

impl Ord for Endpoint {
    fn cmp(&self, other: &Endpoint) -> std::cmp::Ordering {
        self.addr().cmp(&other.addr())
    }
}

impl PartialOrd for Endpoint {
    fn partial_cmp(&self, other: &Endpoint) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr().fmt(f)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr().fmt(f)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Endpoint, Self::Err> {
        s.parse::<SocketAddr>().map(Endpoint::from)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.addr().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Endpoint, D::Error> {
        SocketAddr::deserialize(d).map(Endpoint::from)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/comm`: bytes, not guaranteed UTF-8.
    pub comm: Vec<u8>,
    /// `/proc/PID/cmdline` with NULs turned into spaces.
    pub cmdline: Vec<u8>,
    pub uid: Option<u32>,
    pub fds_open: u32,
    /// RLIMIT_NOFILE soft limit; `None` when unlimited or unreadable.
    pub fd_limit: Option<u64>,
    /// Its parent (`PPid:` of `/proc/PID/status`): a server's supervisor,
    /// for its workers.
    #[serde(default)]
    pub ppid: Option<u32>,
    /// The parent's command line, for a worker whose own names no server
    /// (started by Python's multiprocessing: `python -c "from
    /// multiprocessing.spawn import spawn_main…" --multiprocessing-fork`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_cmdline: Option<Vec<u8>>,
    /// In a Kubernetes pod: the name of its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl Process {
    /// Started by Python's multiprocessing: its command line says nothing
    /// of the program it runs; its parent's does.
    pub fn forked_worker(cmdline: &[u8]) -> bool {
        Args::new(cmdline).has("--multiprocessing-fork")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Netlink,
    Proc,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Netlink => "netlink",
            Source::Proc => "proc",
        }
    }
}

/// System-wide context: kernel counters and the sysctls the findings cite.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    /// fs.file-nr: allocated file handles, and fs.file-max.
    pub files_allocated: Option<u64>,
    pub files_max: Option<u64>,
    /// `/proc/net/sockstat` and `sockstat6`: section → key → value.
    pub sockstat: BTreeMap<String, BTreeMap<String, u64>>,
    /// `/proc/net/netstat` TcpExt and `/proc/net/snmp` Tcp counters.
    pub tcp_ext: BTreeMap<String, i64>,
    pub tcp: BTreeMap<String, i64>,
    /// Dotted sysctl name → value as the kernel prints it.
    pub sysctls: BTreeMap<String, String>,
    /// Time since boot (`/proc/uptime`): tcp_info ages of events that never
    /// happened count from boot, and this tells them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
}

impl Host {
    /// The `/proc/net/sockstat` TCP line's counts that reports show.
    pub const TCP_COUNTS: [&'static str; 4] = ["inuse", "orphan", "tw", "alloc"];

    /// The `/proc/net/sockstat` counters that are the host's, the same in
    /// every namespace (net/ipv4/proc.c sockstat_seq_show: the orphan
    /// count, the sockets and memory allocated are global); the others
    /// (inuse, tw, and every sockstat6 one) are the namespace's.
    pub const HOST_WIDE_SOCKSTAT: [(&'static str, &'static str); 4] = [
        ("TCP", "alloc"),
        ("TCP", "mem"),
        ("TCP", "orphan"),
        ("UDP", "mem"),
    ];

    /// The TcpExt counters of refused, dropped and timed-out connections
    /// that reports and recordings carry.
    pub const DROP_COUNTERS: [&'static str; 4] = [
        "ListenOverflows",
        "ListenDrops",
        "TCPAbortOnTimeout",
        "TCPTimeouts",
    ];

    /// A sysctl whose value is one number.
    pub fn sysctl_u64(&self, name: &str) -> Option<u64> {
        self.sysctls.get(name)?.trim().parse().ok()
    }

    /// The local port range from `net.ipv4.ip_local_port_range`.
    pub fn ephemeral_range(&self) -> Option<(u16, u16)> {
        let v = self.sysctls.get("net.ipv4.ip_local_port_range")?;
        let mut it = v.split_ascii_whitespace().map(str::parse::<u16>);
        match (it.next(), it.next()) {
            (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
            _ => None,
        }
    }

    /// A `/proc/net/sockstat` counter, e.g. `("TCP", "orphan")`.
    pub fn sockstat(&self, section: &str, key: &str) -> Option<u64> {
        self.sockstat.get(section)?.get(key).copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Accepted by a local listener: grouped by local port.
    Inbound,
    /// Opened from here: grouped by remote endpoint (a pool to a database).
    Outbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Inbound when a local listener holds the local port; without a listener,
/// when the remote port is ephemeral and the local one is not.
pub fn direction(
    s: &Socket,
    listening: &BTreeSet<u16>,
    ephemeral: Option<(u16, u16)>,
) -> Direction {
    if s.state == TcpState::Listen || listening.contains(&s.local.port()) {
        return Direction::Inbound;
    }
    let eph = |p: u16| ephemeral.is_some_and(|(lo, hi)| (lo..=hi).contains(&p));
    if eph(s.remote.port()) && !eph(s.local.port()) {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// Whether a process matches `--process NAME`: its comm is NAME, or one of
/// its command-line words, directory stripped, is NAME.
pub fn name_matches(name: &str, comm: &[u8], cmdline: &[u8]) -> bool {
    comm == name.as_bytes() || Args::new(cmdline).names().any(|w| w == name.as_bytes())
}

/// A command line's words, read one way for everyone who asks (server
/// detection, the settings advice quotes, docker-proxy's forwarding, the
/// daemons' data roots). Split at NUL when the line has one, as
/// `/proc/PID/cmdline` gives it, so that a path with a space stays one
/// word; else at spaces, as [`Process::cmdline`] keeps it.
#[derive(Clone, Debug)]
pub struct Args<'a>(Vec<&'a [u8]>);

impl<'a> Args<'a> {
    pub fn new(cmdline: &'a [u8]) -> Args<'a> {
        let sep = if cmdline.contains(&0) { 0 } else { b' ' };
        Args(
            cmdline
                .split(move |&b| b == sep)
                .filter(|w| !w.is_empty())
                .collect(),
        )
    }

    pub fn words(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.0.iter().copied()
    }

    /// Each word with its directory stripped: `/venv/bin/uvicorn` is
    /// `uvicorn`.
    pub fn names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.words()
            .map(|w| w.rsplit(|&b| b == b'/').next().unwrap_or(w))
    }

    /// Whether a word is exactly `word`.
    pub fn has(&self, word: &str) -> bool {
        self.words().any(|w| w == word.as_bytes())
    }

    /// The value of the first of `flags` the line states: `FLAG V`,
    /// `FLAG=V`, or for a one-letter flag `-xV` (`-w4`, `-t120`).
    pub fn value(&self, flags: &[&str]) -> Option<&'a str> {
        for flag in flags {
            let short = flag.len() == 2 && flag.starts_with('-') && flag != &"--";
            for (i, w) in self.0.iter().enumerate() {
                let Ok(w) = std::str::from_utf8(w) else {
                    continue;
                };
                if w == *flag {
                    return self.0.get(i + 1).and_then(|v| std::str::from_utf8(v).ok());
                }
                let Some(rest) = w.strip_prefix(flag) else {
                    continue;
                };
                let v = match rest.strip_prefix('=') {
                    Some(v) => Some(v),
                    None if short => Some(rest),
                    None => None,
                };
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    return Some(v);
                }
            }
        }
        None
    }
}

/// What the scan could not see. Reported, never fatal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gaps {
    /// Processes that exited between listing /proc and reading their fds.
    pub processes_vanished: u32,
    /// Processes whose fds could not be read (permission: run as root).
    pub processes_unreadable: u32,
    /// Processes not read because zombiescan ran out of descriptors.
    #[serde(default)]
    pub processes_out_of_fds: u32,
    /// The scan ran as root: unreadable processes are denied by a security
    /// module or a user namespace, not for want of privilege.
    pub as_root: bool,
    /// Sentences naming what a source or reader could not provide.
    pub notes: Vec<String>,
}

/// What was asked for. Port and state filters are applied by the collector
/// (in the kernel for netlink); pid and process-name filters after the walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub ports: Vec<u16>,
    pub pids: Vec<u32>,
    pub processes: Vec<String>,
    pub states: Vec<TcpState>,
    /// `--path`: unix sockets bound to these names (a path, or `@name`
    /// for an abstract one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<Vec<u8>>,
}

impl Filter {
    pub fn state_mask(&self) -> u32 {
        if self.states.is_empty() {
            (1 << 13) - 2
        } else {
            self.states.iter().fold(0, |m, s| m | s.mask_bit())
        }
    }

    pub fn matches_ports(&self, s: &Socket) -> bool {
        self.ports.is_empty()
            || self
                .ports
                .iter()
                .any(|&p| s.local.port() == p || s.remote.port() == p)
    }

    pub fn matches_state(&self, s: &Socket) -> bool {
        self.states.is_empty() || self.states.contains(&s.state)
    }

    /// Only unix sockets are asked for (`--path` without `--port`): no
    /// TCP socket is dumped.
    pub fn unix_only(&self) -> bool {
        !self.paths.is_empty() && self.ports.is_empty()
    }
}

/// A hasher for socket inodes: one multiply, where SipHash would cost as
/// much as the rest of the owner lookup. Inodes are not attacker-chosen;
/// nor are the other keys it serves, counted once a socket (pids, and a
/// folded socket's group: its local port, or the destination local
/// software connects to).
#[derive(Clone, Copy, Debug, Default)]
pub struct InodeHasher(u64);

impl Hasher for InodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let m = u128::from(self.0 ^ n) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type InodeMap<V> = HashMap<u64, V, BuildHasherDefault<InodeHasher>>;

/// A map whose keys are counted once a socket, hashed as inodes are.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<InodeHasher>>;

/// The container a process runs in, from its cgroup path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// docker, containerd, cri-o, podman.
    pub runtime: String,
    /// The full id: 64 hex digits.
    pub id: String,
    /// Its name, where the runtime's state says it.
    pub name: Option<String>,
}

impl Container {
    /// The 12-digit id `docker ps` shows.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// A Kubernetes pod, named from the node (kubelet's log directories, the
/// runtime's annotations); `namespace` and `name` are empty when only its
/// UID (from the cgroup path) is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Pod {
    /// "shop/checkout-7d9f8-x2x4q", or "uid 4f0c…" when unnamed.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("uid {}", self.uid)
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// Which network namespace a snapshot is of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netns {
    pub inode: Option<u64>,
    /// Its `ip netns` name.
    pub name: Option<String>,
    /// The container whose processes are in it (in a pod, a container of
    /// the pod's rather than its sandbox).
    pub container: Option<Container>,
    /// The Kubernetes pod whose network it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    /// Whether it is zombiescan's own namespace (the host's, usually).
    pub own: bool,
    /// The `--netns` argument that scans it again (its name, or a pid in
    /// it), when zombiescan entered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter: Option<String>,
    /// Whether it is the host's initial namespace (that of pid 1), whose
    /// counters run since boot; `None` when pid 1's could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<bool>,
}

impl Netns {
    /// Since when its counters (ListenOverflows…) count.
    pub fn counted_since(&self) -> &'static str {
        match self.initial {
            Some(true) => "since boot",
            Some(false) => "since this network namespace was created",
            None => "in this network namespace",
        }
    }

    /// "netns 4026532301 (ip netns web1, docker 8e76985e7965 web)".
    pub fn label(&self) -> String {
        let mut extra = Vec::new();
        if let Some(n) = &self.name {
            extra.push(format!("ip netns {n}"));
        }
        match (&self.pod, &self.container) {
            // "pod shop/checkout-7d9f8-x2x4q · container api"
            (Some(pod), c) => {
                let mut s = format!("pod {}", pod.label());
                if let Some(c) = c {
                    let name = c.name.as_deref().unwrap_or_else(|| c.short_id());
                    s.push_str(&format!(" · container {name}"));
                }
                extra.push(s);
            }
            (None, Some(c)) => {
                let name = c.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
                extra.push(format!("{} {}{name}", c.runtime, c.short_id()));
            }
            (None, None) => {}
        }
        let ino = self.inode.map_or("?".to_string(), |i| i.to_string());
        if extra.is_empty() {
            format!("netns {ino}")
        } else {
            format!("netns {ino} ({})", extra.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_state_numbers_round_trip() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(TcpState::from_kernel(i as u8 + 1), Some(*s));
            assert_eq!(TcpState::from_name(s.name()), Some(*s));
        }
        assert_eq!(TcpState::from_kernel(12), Some(TcpState::SynRecv));
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(13), None);
        assert_eq!(TcpState::from_name("close-wait"), Some(TcpState::CloseWait));
    }

    #[test]
    fn tcp_info_of_any_length() {
        let mut b = vec![0u8; 240];
        b[2] = 3;
        b[52..56].copy_from_slice(&1234u32.to_ne_bytes());
        b[228..232].copy_from_slice(&7u32.to_ne_bytes());
        b[120..128].copy_from_slice(&(1u64 << 40).to_ne_bytes());
        let full = TcpInfo::decode(&b);
        assert_eq!(full.retransmits(), Some(3));
        assert_eq!(full.last_data_recv(), Some(1234));
        assert_eq!(full.snd_wnd(), Some(7));
        assert_eq!(full.bytes_acked(), Some(1 << 40));
        // A 4.19 kernel sends 192 bytes: no snd_wnd, no rcv_wnd.
        let old = TcpInfo::decode(&b[..192]);
        assert_eq!(old.last_data_recv(), Some(1234));
        assert_eq!(old.notsent_bytes(), Some(0));
        assert_eq!((old.snd_wnd(), old.rcv_wnd()), (None, None));
        let none = TcpInfo::decode(&[]);
        assert_eq!((none.retransmits(), none.rto()), (None, None));
        // Cut inside a field: that field is absent too.
        assert_eq!(TcpInfo::decode(&b[..54]).last_data_recv(), None);
    }

    #[test]
    fn process_name_match() {
        let cmd = b"/usr/bin/python3\0-m\0uvicorn\0app:app\0";
        assert!(name_matches("uvicorn", b"python3", cmd));
        let args =
            Args::new(b"/venv/bin/gunicorn -w4 --backlog=8 -t 120 --bind unix:/run/a b.sock");
        assert_eq!(args.value(&["--workers", "-w"]), Some("4"));
        assert_eq!(args.value(&["--backlog"]), Some("8"));
        assert_eq!(args.value(&["--timeout", "-t"]), Some("120"));
        assert_eq!(args.value(&["--bind", "-b"]), Some("unix:/run/a"));
        assert_eq!(args.value(&["--keep-alive"]), None);
        assert!(args.has("-w4") && !args.has("-w"));
        assert_eq!(args.names().next(), Some(&b"gunicorn"[..]));
        // A NUL-separated line keeps a path with a space as one word.
        let raw = Args::new(b"dockerd\0--data-root\0/srv/my docker\0");
        assert_eq!(raw.value(&["--data-root"]), Some("/srv/my docker"));
        assert_eq!(
            Args::new(b"docker-proxy\0-host-port\x0030020\0-container-port=80\0")
                .value(&["-container-port"]),
            Some("80")
        );
        assert!(name_matches("python3", b"python3", cmd));
        assert!(!name_matches("uvi", b"python3", cmd));
        assert!(name_matches("gunicorn", b"gunicorn", b""));
        assert!(name_matches(
            "uvicorn",
            b"python3",
            b"python3 -m uvicorn app:app"
        ));
    }

    #[test]
    fn state_mask_includes_new_syn_recv() {
        let f = Filter {
            states: vec![TcpState::SynRecv, TcpState::Listen],
            ..Filter::default()
        };
        assert_eq!(f.state_mask(), 1 << 3 | 1 << 12 | 1 << 10);
        assert_eq!(Filter::default().state_mask(), 0x1ffe);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A scan holds every socket a finding lists: its size is memory at
    /// 100,000 connections. An endpoint is 20 bytes, a timer 6; a socket,
    /// its tcp_info boxed, 88.
    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Endpoint>(), 20);
        assert_eq!(std::mem::size_of::<Timer>(), 6);
        assert_eq!(std::mem::size_of::<Socket>(), 88);
        assert_eq!(std::mem::size_of::<FoldedSocket>(), 12);
    }

    #[test]
    fn an_endpoint_is_the_address_it_was() {
        for a in [
            "10.0.0.1:80",
            "[::1]:443",
            "[::ffff:10.0.0.1]:80",
            "0.0.0.0:0",
            "[::]:0",
        ] {
            let sa: SocketAddr = a.parse().expect("addr");
            let e = Endpoint::from(sa);
            assert_eq!(e.addr(), sa, "{a}");
            assert_eq!(e.to_string(), sa.to_string());
            assert_eq!(
                serde_json::to_string(&e).ok(),
                serde_json::to_string(&sa).ok()
            );
        }
        let v4: Endpoint = "10.0.0.1:80".parse().expect("v4");
        let mapped: Endpoint = "[::ffff:10.0.0.1]:80".parse().expect("mapped");
        assert_ne!(v4, mapped, "an IPv6 socket's mapped address is not IPv4");
        assert!(v4 < mapped, "ordered as SocketAddr: IPv4 first");
    }
}
