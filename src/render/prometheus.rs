//! `--format prometheus`: the report in the Prometheus text exposition
//! format (0.0.4), for node_exporter's textfile collector or a Pushgateway.
//!
//! Every series carries the namespace it was scanned in. The per-state and
//! per-kind families are written in full, zeros included, so that a series
//! does not vanish between two scrapes when the count falls to nothing.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use crate::classify::{Kind, Severity};
use crate::model::{Host, TcpState};
use crate::report::Report;

/// One metric family: its samples are gathered from every report, then
/// written under one HELP and TYPE.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: String,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: String::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.samples, "{}{{", self.name);
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(self.samples, "{sep}{k}=\"{}\"", escape(v));
        }
        let _ = writeln!(self.samples, "}} {value}");
    }
}

use crate::render::sanitize::prometheus_label as escape;

fn severity_level(s: Option<Severity>) -> u8 {
    match s {
        None => 0,
        Some(Severity::Info) => 1,
        Some(Severity::Warning) => 2,
        Some(Severity::Critical) => 3,
    }
}

pub fn write(reports: &[Report], out: &mut dyn Write) -> io::Result<()> {
    let mut sockets = Family::new("zombiescan_sockets", "gauge", "TCP sockets by state.");
    let mut port_sockets = Family::new(
        "zombiescan_port_sockets",
        "gauge",
        "TCP sockets by port (local for inbound, remote for outbound) and state.",
    );
    let mut port_queue = Family::new(
        "zombiescan_port_queue_bytes",
        "gauge",
        "Bytes waiting in the receive and send queues of a port's sockets.",
    );
    let mut proc_sockets = Family::new(
        "zombiescan_process_sockets",
        "gauge",
        "TCP sockets a process holds, by state.",
    );
    let mut proc_fds = Family::new(
        "zombiescan_process_fds_open",
        "gauge",
        "File descriptors a socket-holding process has open.",
    );
    let mut proc_limit = Family::new(
        "zombiescan_process_fd_limit",
        "gauge",
        "A socket-holding process's RLIMIT_NOFILE soft limit (absent when unlimited).",
    );
    let mut finding_sockets = Family::new(
        "zombiescan_finding_sockets",
        "gauge",
        "Sockets (or processes, for fd_exhaustion) a kind of finding concerns; 0 when none.",
    );
    let mut finding_severity = Family::new(
        "zombiescan_finding_severity",
        "gauge",
        "The highest severity of a kind of finding: 0 none, 1 info, 2 warning, 3 critical.",
    );
    let mut unowned = Family::new(
        "zombiescan_unowned_sockets",
        "gauge",
        "Sockets with an inode whose owning process was not found.",
    );
    let mut host_tcp = Family::new(
        "zombiescan_host_tcp_sockets",
        "gauge",
        "TCP sockets of the namespace from /proc/net/sockstat: inuse, orphan, tw, alloc.",
    );
    let mut host_files = Family::new(
        "zombiescan_host_file_handles",
        "gauge",
        "File handles of the host: allocated and max (/proc/sys/fs/file-nr).",
    );
    let mut host_ext = Family::new(
        "zombiescan_host_tcp_ext_total",
        "counter",
        "TcpExt counters of the namespace since boot (/proc/net/netstat).",
    );
    let mut scanned = Family::new(
        "zombiescan_scan_timestamp_seconds",
        "gauge",
        "When the sockets were read, in seconds since the Unix epoch.",
    );

    for r in reports {
        let snap = r.snapshot;
        let netns = snap.netns.label();
        let ns = ("netns", netns.as_str());
        for st in TcpState::ALL {
            sockets.add(&[ns, ("state", st.name())], r.summary.by_state.get(st));
        }
        for g in &r.ports {
            let port = g.port.to_string();
            let remote = g.remote.map(|ip| ip.to_string()).unwrap_or_default();
            let at = [
                ns,
                ("port", port.as_str()),
                ("direction", g.direction.name()),
                ("remote", remote.as_str()),
            ];
            for (st, n) in g.by_state.iter().filter(|(_, n)| *n > 0) {
                port_sockets.add(&[&at[..], &[("state", st.name())]].concat(), n);
            }
            port_queue.add(&[&at[..], &[("queue", "recv")]].concat(), g.recv_q);
            port_queue.add(&[&at[..], &[("queue", "send")]].concat(), g.send_q);
        }
        for p in &r.processes {
            let pid = p.process.pid.to_string();
            let comm = String::from_utf8_lossy(&p.process.comm);
            let at = [ns, ("pid", pid.as_str()), ("comm", &comm)];
            for (st, n) in p.by_state.iter().filter(|(_, n)| *n > 0) {
                proc_sockets.add(&[&at[..], &[("state", st.name())]].concat(), n);
            }
            proc_fds.add(&at, p.process.fds_open);
            if let Some(limit) = p.process.fd_limit {
                proc_limit.add(&at, limit);
            }
        }
        for kind in Kind::ALL {
            let of_kind = r.findings.iter().filter(|f| f.kind == kind);
            let count: u64 = of_kind.clone().map(|f| u64::from(f.count)).sum();
            let worst = of_kind.map(|f| f.severity).max();
            finding_sockets.add(&[ns, ("kind", kind.name())], count);
            finding_severity.add(&[ns, ("kind", kind.name())], severity_level(worst));
        }
        unowned.add(&[ns], r.unowned);
        let h = &snap.host;
        if let Some(tcp) = h.sockstat.get("TCP") {
            for k in Host::TCP_COUNTS {
                host_tcp.add(&[ns, ("kind", k)], tcp.get(k).copied().unwrap_or(0));
            }
        }
        if let Some(a) = h.files_allocated {
            host_files.add(&[ns, ("kind", "allocated")], a);
        }
        if let Some(m) = h.files_max {
            host_files.add(&[ns, ("kind", "max")], m);
        }
        for k in Host::DROP_COUNTERS {
            if let Some(v) = h.tcp_ext.get(k) {
                host_ext.add(&[ns, ("counter", k)], v);
            }
        }
        let t = snap
            .captured_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        scanned.add(&[ns], format!("{t:.3}"));
    }

    let mut text = String::new();
    for f in [
        sockets,
        port_sockets,
        port_queue,
        proc_sockets,
        proc_fds,
        proc_limit,
        finding_sockets,
        finding_severity,
        unowned,
        host_tcp,
        host_files,
        host_ext,
        scanned,
    ] {
        if f.samples.is_empty() {
            continue;
        }
        let _ = writeln!(text, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(text, "# TYPE {} {}", f.name, f.kind);
        text.push_str(&f.samples);
    }
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        // A line feed, as every control character, becomes text.
        assert_eq!(escape("two\nlines"), r"two\\x0alines");
        assert_eq!(escape("uvicorn"), "uvicorn");
    }
}
