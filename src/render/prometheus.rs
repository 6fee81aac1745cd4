//! The Prometheus text exposition format (0.0.4): `--format prometheus`
//! (for node_exporter's textfile collector or a Pushgateway) and the
//! `zombiescan serve` exporter write it with this one encoder and these
//! names.
//!
//! Labels stay bounded and stable, so that a busy host does not flood its
//! Prometheus and a series survives a restart:
//! - the namespace is `netns_name` (its `ip netns` name) and `container`
//!   (its container's name), both empty for zombiescan's own; an inode
//!   (`inode:N`) only for a namespace with neither;
//! - ports: one series set per listening port; connections to other local
//!   ports are summed under `port="other"`; outbound, the top N remote
//!   endpoints by connections ([`Options::top_remotes`]), the rest summed
//!   under `remote="other",port="other"`;
//! - processes by `comm`, summed over the processes of that name (a `pid`
//!   label only with [`Options::pid_labels`]: pids change at every restart).
//!
//! The per-state and per-kind families are written in full, zeros
//! included, so that a series does not vanish when its count falls to
//! nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::UNIX_EPOCH;

use crate::classify::{Kind, Severity};
use crate::model::{Direction, Host, Netns, StateCounts, TcpState};
use crate::report::Report;

/// What the labels may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Outbound remote endpoints (address and port) with their own series;
    /// the others are summed under "other".
    pub top_remotes: usize,
    /// One series per process with a `pid` label, instead of one per comm.
    pub pid_labels: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            top_remotes: 20,
            pid_labels: false,
        }
    }
}

/// One metric family: its samples are gathered from every report, then
/// written under one HELP and TYPE.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: String,
    count: usize,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: String::new(),
            count: 0,
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.count += 1;
        self.samples.push_str(self.name);
        if !labels.is_empty() {
            self.samples.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(self.samples, "{sep}{k}=\"{}\"", escape(v));
            }
            self.samples.push('}');
        }
        let _ = writeln!(self.samples, " {value}");
    }
}

/// HELP, TYPE and the samples of each family that has any.
fn emit(families: Vec<Family>) -> String {
    let mut text = String::new();
    for f in families {
        if f.samples.is_empty() {
            continue;
        }
        let _ = writeln!(text, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(text, "# TYPE {} {}", f.name, f.kind);
        text.push_str(&f.samples);
    }
    text
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

/// The `netns_name` and `container` labels of a namespace.
pub fn namespace_labels(ns: &Netns) -> (String, String) {
    let container = ns
        .container
        .as_ref()
        .map(|c| c.name.clone().unwrap_or_else(|| c.short_id().to_string()))
        .unwrap_or_default();
    let name = match (&ns.name, ns.inode) {
        (Some(n), _) => n.clone(),
        _ if ns.own || ns.container.is_some() => String::new(),
        (None, Some(ino)) => format!("inode:{ino}"),
        (None, None) => String::new(),
    };
    (name, container)
}

/// The `k8s_namespace`, `k8s_pod` and `k8s_container` labels of a pod's
/// namespace: names, never the pod's UID or a container's id, so that a
/// series survives a container restarted in the same pod (the pod's name
/// changes only with a new pod). Empty off Kubernetes.
pub fn pod_labels(ns: &Netns) -> Vec<(&'static str, String)> {
    let Some(pod) = &ns.pod else {
        return Vec::new();
    };
    let container = ns
        .container
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_default();
    let mut out = vec![
        ("k8s_namespace", pod.namespace.clone()),
        ("k8s_pod", pod.name.clone()),
        ("k8s_container", container),
    ];
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// Where a socket's series go: its direction and its `port` and `remote`
/// labels ("other" past the bounds).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Where {
    direction: Direction,
    port: String,
    remote: String,
}

/// The labelled endpoints of one report: its listening ports and its top
/// outbound endpoints.
struct Bounds {
    /// The ports with a listener: those of the report's listening groups.
    listening: BTreeSet<u16>,
    top: HashSet<(IpAddr, u16)>,
}

impl Bounds {
    fn new(r: &Report, opts: &Options) -> Bounds {
        // The report's groups come biggest first within a direction.
        let top = r
            .ports
            .iter()
            .filter(|g| g.direction == Direction::Outbound)
            .filter_map(|g| g.remote.map(|ip| (ip, g.port)))
            .take(opts.top_remotes)
            .collect();
        let listening = r
            .ports
            .iter()
            .filter(|g| g.listening)
            .map(|g| g.port)
            .collect();
        Bounds { listening, top }
    }

    fn place(&self, direction: Direction, port: u16, remote: Option<IpAddr>) -> Where {
        let other = || "other".to_string();
        match (direction, remote) {
            (Direction::Inbound, _) => Where {
                direction,
                port: if self.listening.contains(&port) {
                    port.to_string()
                } else {
                    other()
                },
                remote: String::new(),
            },
            (Direction::Outbound, Some(ip)) if self.top.contains(&(ip, port)) => Where {
                direction,
                port: port.to_string(),
                remote: ip.to_string(),
            },
            (Direction::Outbound, _) => Where {
                direction,
                port: other(),
                remote: other(),
            },
        }
    }
}

#[derive(Default)]
struct PortSums {
    by_state: StateCounts,
    recv_q: u64,
    send_q: u64,
}

/// The processes of one comm (or one pid): their sockets, and the one
/// nearest its descriptor limit.
#[derive(Default)]
struct ProcessSums {
    processes: u32,
    by_state: StateCounts,
    /// fds open / limit, fds open, limit of the process nearest its limit
    /// (the most fds open when none has a limit).
    nearest: Option<(f64, u32, Option<u64>)>,
}

impl ProcessSums {
    fn add(&mut self, by_state: &StateCounts, fds_open: u32, limit: Option<u64>) {
        self.processes += 1;
        self.by_state.merge(by_state);
        let ratio = limit.map_or(0.0, |l| f64::from(fds_open) / l.max(1) as f64);
        let nearer = match self.nearest {
            None => true,
            Some((r, open, _)) => ratio > r || (ratio == r && fds_open > open),
        };
        if nearer {
            self.nearest = Some((ratio, fds_open, limit));
        }
    }
}

/// Writes the reports' exposition.
pub fn write(reports: &[Report], opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(encode(reports, opts).as_bytes())
}

/// The reports' exposition, one set of series per namespace.
pub fn encode(reports: &[Report], opts: &Options) -> String {
    let mut sockets = Family::new("zombiescan_sockets", "gauge", "TCP sockets by state.");
    let mut port_sockets = Family::new(
        "zombiescan_port_sockets",
        "gauge",
        "TCP sockets by state: inbound per listening port (others summed under port=\"other\"), \
         outbound per remote endpoint of the top N (others summed under remote=\"other\").",
    );
    let mut port_queue = Family::new(
        "zombiescan_port_queue_bytes",
        "gauge",
        "Bytes waiting in the receive and send queues of a port's sockets.",
    );
    let mut unix_queue = Family::new(
        "zombiescan_unix_listener_queue",
        "gauge",
        "Connections waiting in a unix listener's accept queue (queue=\"waiting\") and its backlog \
         (queue=\"backlog\"): the listeners with a queue, a finding, or behind a scanned port, the \
         --top-remotes N most queued by path (the rest summed under path=\"other\").",
    );
    let mut processes = Family::new(
        "zombiescan_processes",
        "gauge",
        "Socket-holding processes of a name (comm).",
    );
    let mut proc_sockets = Family::new(
        "zombiescan_process_sockets",
        "gauge",
        "TCP sockets the processes of a name (or one pid) hold, by state.",
    );
    let mut proc_fds = Family::new(
        "zombiescan_process_fds_open",
        "gauge",
        "File descriptors open in the process of that name nearest its limit.",
    );
    let mut proc_limit = Family::new(
        "zombiescan_process_fd_limit",
        "gauge",
        "That process's RLIMIT_NOFILE soft limit (absent when unlimited).",
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
    let mut finding_oldest = Family::new(
        "zombiescan_finding_oldest_seconds",
        "gauge",
        "The oldest socket a kind of finding concerns on a port: its age as the finding \
         counts it (since the peer's FIN for close_wait, since the last acknowledgement for \
         half_open, ...).",
    );
    let mut unowned = Family::new(
        "zombiescan_unowned_sockets",
        "gauge",
        "Sockets with an inode whose owning process was not found.",
    );
    let mut host_tcp = Family::new(
        "zombiescan_host_tcp_sockets",
        "gauge",
        "TCP sockets from /proc/net/sockstat: inuse and tw are the namespace's; orphan and alloc are \
         the host's, the same in every namespace (do not sum them across namespaces).",
    );
    let mut host_files = Family::new(
        "zombiescan_host_file_handles",
        "gauge",
        "File handles of the host: allocated and max (/proc/sys/fs/file-nr).",
    );
    let mut host_ext = Family::new(
        "zombiescan_host_tcp_ext_total",
        "counter",
        "TcpExt counters of the namespace (/proc/net/netstat): since boot in the host's, since its creation in another.",
    );
    let mut scanned = Family::new(
        "zombiescan_scan_timestamp_seconds",
        "gauge",
        "When the sockets were read, in seconds since the Unix epoch.",
    );

    for r in reports {
        let snap = r.snapshot;
        let (netns_name, container) = namespace_labels(&snap.netns);
        let pod = pod_labels(&snap.netns);
        let mut ns = vec![
            ("netns_name", netns_name.as_str()),
            ("container", container.as_str()),
        ];
        // Off Kubernetes they are empty: left out, which is the same to
        // Prometheus and keeps every line as it was.
        ns.extend(pod.iter().map(|(k, v)| (*k, v.as_str())));
        for st in TcpState::ALL {
            sockets.add(
                &[&ns[..], &[("state", st.name())]].concat(),
                r.summary.by_state.get(st),
            );
        }

        let bounds = Bounds::new(r, opts);
        let mut ports: BTreeMap<Where, PortSums> = BTreeMap::new();
        for g in &r.ports {
            let sums = ports
                .entry(bounds.place(g.direction, g.port, g.remote))
                .or_default();
            sums.by_state.merge(&g.by_state);
            sums.recv_q += g.recv_q;
            sums.send_q += g.send_q;
        }
        for (w, sums) in &ports {
            let at = [
                &ns[..],
                &[
                    ("direction", w.direction.name()),
                    ("port", w.port.as_str()),
                    ("remote", w.remote.as_str()),
                ],
            ]
            .concat();
            for (st, n) in sums.by_state.iter().filter(|(_, n)| *n > 0) {
                port_sockets.add(&[&at[..], &[("state", st.name())]].concat(), n);
            }
            port_queue.add(&[&at[..], &[("queue", "recv")]].concat(), sums.recv_q);
            port_queue.add(&[&at[..], &[("queue", "send")]].concat(), sums.send_q);
        }

        // The report lists the unix listeners most queued first.
        let mut other_waiting = None;
        for (i, g) in r.unix.iter().enumerate() {
            let Some((waiting, backlog)) = g.queue else {
                continue;
            };
            if i >= opts.top_remotes {
                *other_waiting.get_or_insert(0u64) += u64::from(waiting);
                continue;
            }
            let path = String::from_utf8_lossy(&g.path).into_owned();
            let at = [&ns[..], &[("path", path.as_str())]].concat();
            unix_queue.add(&[&at[..], &[("queue", "waiting")]].concat(), waiting);
            unix_queue.add(&[&at[..], &[("queue", "backlog")]].concat(), backlog);
        }
        if let Some(n) = other_waiting {
            unix_queue.add(
                &[&ns[..], &[("path", "other"), ("queue", "waiting")]].concat(),
                n,
            );
        }

        let mut per_name: BTreeMap<(String, Option<u32>), ProcessSums> = BTreeMap::new();
        for p in &r.processes {
            let comm = String::from_utf8_lossy(&p.process.comm).into_owned();
            let pid = opts.pid_labels.then_some(p.process.pid);
            per_name.entry((comm, pid)).or_default().add(
                &p.by_state,
                p.process.fds_open,
                p.process.fd_limit,
            );
        }
        for ((comm, pid), sums) in &per_name {
            let pid = pid.map(|p| p.to_string());
            let mut at = [&ns[..], &[("comm", comm.as_str())]].concat();
            if let Some(pid) = &pid {
                at.push(("pid", pid.as_str()));
            } else {
                processes.add(&at, sums.processes);
            }
            for (st, n) in sums.by_state.iter().filter(|(_, n)| *n > 0) {
                proc_sockets.add(&[&at[..], &[("state", st.name())]].concat(), n);
            }
            if let Some((_, open, limit)) = sums.nearest {
                proc_fds.add(&at, open);
                if let Some(limit) = limit {
                    proc_limit.add(&at, limit);
                }
            }
        }

        // A socket finding is one direction and one port (inbound) or
        // endpoint (outbound): its oldest socket is its own.
        let mut oldest: BTreeMap<(Kind, Where), u32> = BTreeMap::new();
        for f in &r.findings {
            let (Some(dir), Some(age), Some(&port)) = (f.direction, f.oldest_ms, f.ports.first())
            else {
                continue;
            };
            let w = bounds.place(dir, port, f.remote.map(|r| r.ip()));
            let e = oldest.entry((f.kind, w)).or_insert(age);
            *e = (*e).max(age);
        }
        for kind in Kind::ALL {
            let of_kind = r.findings.iter().filter(|f| f.kind == kind);
            let count: u64 = of_kind.clone().map(|f| u64::from(f.count)).sum();
            let worst = of_kind.map(|f| f.severity).max();
            let at = [&ns[..], &[("kind", kind.name())]].concat();
            finding_sockets.add(&at, count);
            finding_severity.add(&at, severity_level(worst));
        }
        for ((kind, w), ms) in &oldest {
            finding_oldest.add(
                &[
                    &ns[..],
                    &[
                        ("kind", kind.name()),
                        ("direction", w.direction.name()),
                        ("port", w.port.as_str()),
                    ],
                ]
                .concat(),
                format!("{:.3}", f64::from(*ms) / 1000.0),
            );
        }
        unowned.add(&ns, r.unowned);
        let h = &snap.host;
        if let Some(tcp) = h.sockstat.get("TCP") {
            for k in Host::TCP_COUNTS {
                host_tcp.add(
                    &[&ns[..], &[("kind", k)]].concat(),
                    tcp.get(k).copied().unwrap_or(0),
                );
            }
        }
        if let Some(a) = h.files_allocated {
            host_files.add(&[&ns[..], &[("kind", "allocated")]].concat(), a);
        }
        if let Some(m) = h.files_max {
            host_files.add(&[&ns[..], &[("kind", "max")]].concat(), m);
        }
        for k in Host::DROP_COUNTERS {
            if let Some(v) = h.tcp_ext.get(k) {
                host_ext.add(&[&ns[..], &[("counter", k)]].concat(), v);
            }
        }
        let t = snap
            .captured_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        scanned.add(&ns, format!("{t:.3}"));
    }

    emit(vec![
        sockets,
        port_sockets,
        port_queue,
        unix_queue,
        processes,
        proc_sockets,
        proc_fds,
        proc_limit,
        finding_sockets,
        finding_severity,
        finding_oldest,
        unowned,
        host_tcp,
        host_files,
        host_ext,
        scanned,
    ])
}

/// The exporter's account of the scan it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scrape {
    /// The scan served failed: no other series.
    pub error: bool,
    /// How long the scan served took, scan and encoding.
    pub duration_s: f64,
    /// How long ago the scan served completed: above 0 when a scrape
    /// served the last complete scan because a new one took too long.
    pub age_s: f64,
    /// Scans completed since the exporter started, failed ones included.
    pub scans: u64,
    /// Scans that failed.
    pub failed_scans: u64,
}

/// The `zombiescan serve` series, written after the scan's.
pub fn encode_scrape(s: &Scrape) -> String {
    let mut error = Family::new(
        "zombiescan_scrape_error",
        "gauge",
        "1 when the scan failed (the exporter's log says why): no other zombiescan series then.",
    );
    let mut duration = Family::new(
        "zombiescan_scrape_duration_seconds",
        "gauge",
        "How long the scan served took.",
    );
    let mut age = Family::new(
        "zombiescan_scan_age_seconds",
        "gauge",
        "How long ago the scan served completed: more than a scrape interval when scans take \
         longer than the scrape timeout and the last complete one is served.",
    );
    let mut scans = Family::new(
        "zombiescan_scans_total",
        "counter",
        "Scans run since the exporter started (concurrent scrapes share one).",
    );
    let mut failed = Family::new(
        "zombiescan_scan_errors_total",
        "counter",
        "Scans that failed since the exporter started.",
    );
    let mut info = Family::new(
        "zombiescan_build_info",
        "gauge",
        "The zombiescan version serving these series.",
    );
    error.add(&[], u8::from(s.error));
    duration.add(&[], format!("{:.6}", s.duration_s));
    age.add(&[], format!("{:.3}", s.age_s));
    scans.add(&[], s.scans);
    failed.add(&[], s.failed_scans);
    info.add(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    emit(vec![error, duration, age, scans, failed, info])
}

/// How many samples an exposition holds (the series a scrape adds).
pub fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Container;
    use crate::testing::{process, snapshot, sock};

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        // A line feed, as every control character, becomes text.
        assert_eq!(escape("two\nlines"), r"two\\x0alines");
        assert_eq!(escape("uvicorn"), "uvicorn");
    }

    #[test]
    fn namespaces_are_named_not_numbered() {
        let mut ns = Netns {
            inode: Some(4026532301),
            own: true,
            ..Netns::default()
        };
        assert_eq!(namespace_labels(&ns), (String::new(), String::new()));
        ns.own = false;
        ns.container = Some(Container {
            runtime: "docker".into(),
            id: "8e76985e7965".repeat(5),
            name: Some("web".into()),
        });
        assert_eq!(namespace_labels(&ns), (String::new(), "web".into()));
        ns.container.as_mut().expect("c").name = None;
        assert_eq!(namespace_labels(&ns).1, "8e76985e7965");
        ns.container = None;
        ns.name = Some("blue".into());
        assert_eq!(namespace_labels(&ns), ("blue".into(), String::new()));
        // Neither: the inode is all there is.
        ns.name = None;
        assert_eq!(namespace_labels(&ns).0, "inode:4026532301");
    }

    /// A pod's namespace: its Kubernetes names as labels, the same for a
    /// container restarted with a new id; none off Kubernetes.
    #[test]
    fn a_pods_namespace_carries_its_kubernetes_names() {
        let mut ns = Netns {
            inode: Some(4026532301),
            ..Netns::default()
        };
        assert!(pod_labels(&ns).is_empty());
        ns.pod = Some(crate::model::Pod {
            namespace: "shop".into(),
            name: "checkout-7d9f8-x2x4q".into(),
            uid: "4f0c8d2e-7a1b-4c3d-9e8f-0a1b2c3d4e5f".into(),
        });
        ns.container = Some(Container {
            runtime: "containerd".into(),
            id: "8e76985e7965".repeat(5),
            name: Some("api".into()),
        });
        let want = vec![
            ("k8s_namespace", "shop".to_string()),
            ("k8s_pod", "checkout-7d9f8-x2x4q".to_string()),
            ("k8s_container", "api".to_string()),
        ];
        assert_eq!(pod_labels(&ns), want);
        ns.container.as_mut().expect("c").id = "0123456789ab".repeat(5);
        assert_eq!(pod_labels(&ns), want, "a restarted container");
        assert_eq!(
            ns.label(),
            "netns 4026532301 (pod shop/checkout-7d9f8-x2x4q · container api)"
        );
    }

    /// 5,000 peers, 40 remote endpoints, 30 processes of one name: the
    /// series stay a handful, the totals stay true.
    #[test]
    fn labels_stay_bounded_and_sums_stay_true() {
        let mut socks = vec![sock(TcpState::Listen, "10.0.0.1:30020", "0.0.0.0:0", 1)];
        for i in 0..5000u32 {
            let remote = format!("10.1.{}.{}:{}", i / 250, i % 250, 40000 + i % 1000);
            socks.push(sock(
                TcpState::Established,
                "10.0.0.1:30020",
                &remote,
                u64::from(10 + i),
            ));
        }
        // A local port nobody listens on any more.
        socks.push(sock(
            TcpState::CloseWait,
            "10.0.0.1:30099",
            "10.0.0.9:45000",
            9,
        ));
        for i in 0..40u32 {
            for j in 0..=i {
                socks.push(sock(
                    TcpState::Established,
                    &format!("10.0.0.1:{}", 50000 + i * 50 + j),
                    &format!("10.2.0.{i}:5432"),
                    u64::from(100_000 + i * 100 + j),
                ));
            }
        }
        let mut snap = snapshot(socks);
        for pid in 200..230 {
            snap.processes
                .insert(pid, process(pid, "worker", "worker", 10, Some(1024)));
        }
        snap.processes
            .insert(231, process(231, "worker", "worker", 1000, Some(1024)));
        let report = Report::new(&snap, Vec::new(), &crate::report::Options::default());
        let opts = Options {
            top_remotes: 5,
            pid_labels: false,
        };
        let text = encode(std::slice::from_ref(&report), &opts);
        assert!(series_count(&text) < 120, "{}", series_count(&text));
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        // Every socket is in one port series.
        assert_eq!(sum("zombiescan_port_sockets{"), report.summary.total as f64);
        let outbound: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("zombiescan_port_sockets{") && l.contains("outbound"))
            .collect();
        assert_eq!(outbound.len(), 6, "top 5 and other: {outbound:#?}");
        // The biggest pools are the ones named.
        assert!(outbound.iter().any(|l| l.contains("remote=\"10.2.0.39\"")));
        assert!(
            outbound
                .iter()
                .any(|l| l.contains("remote=\"other\",state"))
        );
        assert!(
            text.contains(
                "direction=\"inbound\",port=\"other\",remote=\"\",state=\"CLOSE_WAIT\"} 1"
            )
        );
        assert!(!text.contains("pid=\""));
        // 31 workers are one series; the fds are the nearest one's.
        assert!(
            text.contains(
                "zombiescan_processes{netns_name=\"\",container=\"\",comm=\"worker\"} 31"
            )
        );
        assert!(text.contains(
            "zombiescan_process_fds_open{netns_name=\"\",container=\"\",comm=\"worker\"} 1000"
        ));

        let with_pids = encode(
            std::slice::from_ref(&report),
            &Options {
                pid_labels: true,
                ..opts
            },
        );
        assert!(with_pids.contains("comm=\"worker\",pid=\"231\"} 1000"));
    }
}
