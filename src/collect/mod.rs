//! Collectors: everything that reads the kernel. Each source fills the same
//! model; parsers are pure functions over bytes, tested on fixtures.
//!
//! `scan.rs` runs a scan (each namespace's sockets and host counters, the
//! owners from one walk of /proc); `follow.rs` follows a scanned port one
//! hop (docker-proxy, NAT) and says where else it is served; one file per
//! source besides: `netlink.rs`, `procnet.rs`, `procs.rs`, `host.rs`,
//! `netns.rs`, `capture.rs`, and `destroy.rs` for `kill`.

pub mod bpf;
#[cfg(zombiescan_bpf)]
mod btf;
pub mod capture;
pub mod destroy;
pub mod fold;
pub mod host;
pub mod k8s;
pub mod netlink;
pub mod netns;
pub mod procnet;
pub mod procs;
pub mod unix;
pub mod waiting;

mod follow;
mod scan;

pub use follow::local_addrs;
pub use scan::{proc_sockets, scan, scan_all};

use crate::model::Filter;

/// Where every process is read.
const PROC: &str = "/proc";

/// Which socket source to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// netlink, or /proc/net/tcp when netlink cannot be opened.
    Auto,
    Netlink,
    Proc,
}

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub source: SourceChoice,
    pub filter: Filter,
    /// Walk /proc/*/fd for owners (off with `--no-processes`).
    pub owners: bool,
    /// `--netns NAME|PATH|PID|pod/NS/NAME`; `None` scans zombiescan's own namespace.
    pub netns: Option<String>,
    /// A `--port` scan of zombiescan's own namespace also scans the
    /// namespaces a forwarder or NAT sends the port to (off with
    /// `--no-follow`).
    pub follow: bool,
    /// A scan whose report lists only flagged sockets (a one-shot scan,
    /// the exporter's, a recorder's off a terminal) folds the healthy
    /// connections into counts as the dump streams, judged by these
    /// thresholds (see [`crate::model::Folded`]); `None` keeps every socket
    /// (`--sockets`, a capture, `kill`, a watch that shows each sample's
    /// ages).
    pub fold: Option<crate::classify::Thresholds>,
}

/// What `/proc/net/tcp` cannot show, said in the report.
pub const PROC_SOURCE_LIMITS: &str = "source proc: no tcp_info (idle times, windows, rtt, \
unacked), no socket cookies, no accept-queue limits of listeners";
