//! Every finding that can be built on one machine, built for real in
//! namespaces, and the healthy controls that must raise nothing.

use std::time::Duration;

use zombiescan::render::json::{Document, Finding};

use crate::netns::{BIN, Netns, ok, ss_counts};

pub(crate) fn of_kind<'a>(doc: &'a Document, kind: &str) -> Vec<&'a Finding> {
    doc.findings.iter().filter(|f| f.kind == kind).collect()
}

fn one<'a>(doc: &'a Document, kind: &str, port: u16) -> &'a Finding {
    let f: Vec<&Finding> = of_kind(doc, kind)
        .into_iter()
        .filter(|f| f.ports.contains(&port))
        .collect();
    assert_eq!(f.len(), 1, "one {kind} on port {port}: {:#?}", doc.findings);
    f[0]
}

fn flagged(doc: &Document, kind: &str) -> usize {
    doc.sockets
        .iter()
        .filter(|s| s.findings.iter().any(|k| k == kind))
        .count()
}

#[test]
fn close_wait_when_the_server_never_closes() {
    live!();
    let mut ns = Netns::new("cw");
    let server = ns.close_wait_leak(4, 0);
    // The four reach CLOSE_WAIT, then the 1 s stall, one by one: a scan
    // between two of them flags fewer. Wait until every one is old enough.
    let doc = ns.scan_until(&["--stall", "1s"], "4 close_wait", |d| {
        of_kind(d, "close_wait")
            .first()
            .is_some_and(|f| f.count == 4)
    });
    let f = one(&doc, "close_wait", 30020);
    assert_eq!((f.count, f.severity.as_str()), (4, "warning"));
    assert_eq!(f.pids, vec![server]);
    assert_eq!(f.evidence["direction"], "inbound");
    assert!(f.evidence["oldest_s"].as_f64().is_some_and(|s| s >= 1.0));
    assert!(f.explanation.contains("CLOSE_WAIT") && f.remediation.contains("timeout"));
    assert_eq!(
        flagged(&doc, "close_wait"),
        4,
        "the flagged sockets are listed"
    );
    // The client's closed sockets wait for the server's FIN: orphaned
    // FIN_WAIT2, only information.
    let fw = of_kind(&doc, "fin_wait2");
    assert_eq!(fw.len(), 1);
    assert_eq!((fw[0].severity.as_str(), fw[0].count), ("info", 4));
    assert!(fw[0].pids.is_empty());
    // --fail-on turns it into exit status 1.
    let out = ns.exec(&[crate::netns::BIN, "--stall", "1s", "--fail-on", "warning"]);
    assert_eq!(out.status.code(), Some(1));
    let out = ns.exec(&[crate::netns::BIN, "--stall", "1s", "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn half_open_when_the_clients_link_goes_down_with_data_in_flight() {
    live!();
    let mut server_ns = Netns::new("hos");
    let mut client_ns = Netns::new("hoc");
    server_ns.veth_to(&client_ns, "10.231.1.1", "10.231.1.2");
    let server = server_ns.spawn(&[
        "listen",
        "--host",
        "10.231.1.1",
        "--port",
        "30020",
        "--on-accept",
        "stream",
    ])[0];
    client_ns.spawn(&[
        "connect",
        "--host",
        "10.231.1.1",
        "--port",
        "30020",
        "--count",
        "2",
        "--read",
    ]);
    server_ns.wait_accepted(2);
    std::thread::sleep(Duration::from_millis(300));
    let out = client_ns.exec(&["ip", "link", "set", "zsb0", "down"]);
    ok(&out);
    let doc = server_ns.scan_until(&["--port", "30020"], "half_open", |d| {
        of_kind(d, "half_open").iter().any(|f| f.count == 2)
    });
    let f = one(&doc, "half_open", 30020);
    assert_eq!(f.pids, vec![server]);
    assert_eq!(f.evidence["retransmitting"], 2);
    assert!(
        f.evidence["max_retransmits"]
            .as_u64()
            .is_some_and(|n| n >= 3)
    );
    assert!(f.evidence["unacked"].as_u64().is_some_and(|n| n > 0));
    assert!(f.remediation.contains("tcp_retries2") && f.remediation.contains("TCP_USER_TIMEOUT"));
    let s = doc
        .sockets
        .iter()
        .find(|s| s.state == "ESTABLISHED")
        .expect("socket");
    assert_eq!(s.timer.kind, "retransmit");
    assert!(
        s.tcp_info
            .as_ref()
            .and_then(|t| t.backoff)
            .is_some_and(|b| b >= 3)
    );
    // Relief: kill closes the half-open connections, not the listener.
    assert!(
        f.remediation
            .contains("zombiescan kill --port 30020 --finding half_open")
    );
    let out = server_ns.exec(&[
        crate::netns::BIN,
        "kill",
        "--port",
        "30020",
        "--finding",
        "half_open",
        "--yes",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: zombiescan::render::kill::KillDoc =
        serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(done.summary.destroyed, 2);
    let left = crate::netns::ss_counts(&server_ns.ss(&["-tanH"]));
    assert_eq!(left.get("ESTABLISHED"), None, "{left:?}");
    assert_eq!(left.get("LISTEN"), Some(&1));
}

/// A pool's connections idle for a while, then every answer silently
/// dropped (a blackhole route on the server's side: no link changes),
/// then a query: half_open says how long the query has gone unanswered,
/// never the idle time before it (the last ACK dates from then).
#[test]
fn half_open_after_an_idle_period_is_aged_from_the_unanswered_query() {
    live!();
    let mut server_ns = Netns::new("ids");
    let mut client_ns = Netns::new("idc");
    server_ns.veth_to(&client_ns, "10.231.4.1", "10.231.4.2");
    server_ns.spawn(&["listen", "--host", "10.231.4.1", "--port", "5432"]);
    /// The go file, removed even when the test fails.
    struct Go(std::path::PathBuf);
    impl Drop for Go {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let go = Go(std::env::temp_dir().join(format!("zombiescan-idle-{}", std::process::id())));
    let _ = std::fs::remove_file(&go.0);
    let client = client_ns.spawn(&[
        "connect",
        "--host",
        "10.231.4.1",
        "--port",
        "5432",
        "--count",
        "2",
        "--send",
        "4096",
        "--send-when",
        go.0.to_str().expect("utf-8 path"),
    ])[0];
    server_ns.wait_accepted(2);
    // The idle period: the age of the last ACK grows through it.
    let idle = Duration::from_secs(4);
    std::thread::sleep(idle);
    let out = server_ns.exec(&["ip", "route", "add", "blackhole", "10.231.4.2/32"]);
    ok(&out);
    let cut = std::time::Instant::now();
    std::fs::write(&go.0, b"").expect("go");
    let doc = client_ns.scan_until(&["--port", "5432", "--stall", "1s"], "half_open", |d| {
        of_kind(d, "half_open").iter().any(|f| f.count == 2)
    });
    let since_cut = cut.elapsed().as_secs_f64();
    let f = one(&doc, "half_open", 5432);
    assert_eq!(f.pids, vec![client]);
    assert_eq!(f.direction.as_deref(), Some("outbound"));
    let age = f.oldest_s.expect("an age");
    assert!(
        age <= since_cut + 0.2,
        "aged {age} s, {since_cut} s after the drop began ({} s of idle before)",
        idle.as_secs()
    );
    // ss is the truth: both connections retransmit, nothing acknowledged.
    let ss = client_ns.ss(&["-tnoH", "state", "established", "dport", "= :5432"]);
    assert_eq!(
        ss.lines().filter(|l| l.contains("timer:(on,")).count(),
        2,
        "{ss}"
    );
}

#[test]
fn peer_not_reading_when_the_client_never_reads() {
    live!();
    let mut ns = Netns::new("pnr");
    let server = ns.spawn(&["listen", "--port", "30020", "--on-accept", "write"])[0];
    let client = ns.spawn(&[
        "connect", "--port", "30020", "--count", "3", "--rcvbuf", "4096",
    ])[0];
    ns.wait_accepted(3);
    // Wait until the probe timer has backed off (the peer answers each
    // probe with a zero window): that is no sign of a dead peer.
    let doc = ns.scan_until(&["--stall", "1s", "--sockets"], "peer_not_reading", |d| {
        of_kind(d, "peer_not_reading").iter().any(|f| f.count == 3)
            && d.sockets
                .iter()
                .filter(|s| s.timer.kind == "persist")
                .all(|s| {
                    s.tcp_info
                        .as_ref()
                        .and_then(|t| t.backoff)
                        .is_some_and(|b| b >= 3)
                })
    });
    let f = one(&doc, "peer_not_reading", 30020);
    assert_eq!(f.pids, vec![server]);
    assert!(f.evidence["send_q"].as_u64().is_some_and(|n| n > 1_000_000));
    let persist = doc
        .sockets
        .iter()
        .filter(|s| s.timer.kind == "persist")
        .count();
    assert_eq!(persist, 3, "zero-window probe timers");
    assert!(
        of_kind(&doc, "half_open").is_empty(),
        "a live peer answering probes is not dead"
    );
    // The client's side of the same connections, in the same scan: its
    // own story (responses it never reads), not the server's.
    let mine: Vec<&Finding> = of_kind(&doc, "app_not_reading")
        .into_iter()
        .filter(|f| f.direction.as_deref() == Some("outbound"))
        .collect();
    assert_eq!(mine.len(), 1, "{:#?}", doc.findings);
    assert_eq!(mine[0].pids, vec![client]);
    let words = format!("{} {}", mine[0].explanation, mine[0].remediation);
    assert!(
        words.contains("the client never read them") && !words.contains("no worker reads"),
        "{words}"
    );
}

#[test]
fn app_not_reading_when_the_server_stops_reading() {
    live!();
    let mut ns = Netns::new("anr");
    let server = ns.spawn(&["listen", "--port", "30020"])[0];
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--send", "1500",
    ]);
    ns.wait_accepted(2);
    let doc = ns.scan_until(&["--stall", "1s"], "app_not_reading", |d| {
        !of_kind(d, "app_not_reading").is_empty()
    });
    let f = one(&doc, "app_not_reading", 30020);
    assert_eq!((f.count, f.pids.clone()), (2, vec![server]));
    assert_eq!(f.evidence["recv_q"], 3000);
    assert!(f.evidence["oldest_s"].as_f64().is_some_and(|s| s >= 1.0));
}

#[test]
fn accept_queue_full_when_the_listener_never_accepts() {
    live!();
    let mut ns = Netns::new("aq");
    let server = ns.spawn(&["listen", "--port", "30020", "--backlog", "4", "--no-accept"])[0];
    ns.spawn(&[
        "connect",
        "--port",
        "30020",
        "--count",
        "20",
        "--nonblocking",
    ]);
    let doc = ns.scan_until(&["--port", "30020"], "accept_queue_full", |d| {
        of_kind(d, "accept_queue_full")
            .iter()
            .any(|f| f.severity == "critical")
    });
    let f = one(&doc, "accept_queue_full", 30020);
    assert_eq!(f.pids, vec![server]);
    assert_eq!(f.evidence["backlog"], 4);
    assert!(f.evidence["accept_queue"].as_u64().is_some_and(|q| q >= 4));
    assert!(
        f.evidence["listen_overflows"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "{:?}",
        f.evidence
    );
    assert!(f.remediation.contains("somaxconn"));
    // As nobody, who cannot read the listener's owner: the limitation
    // comes before the verdict, and no sentence loses its subject.
    let out = ns.exec(
        &[
            &crate::netns::AS_NOBODY[..],
            &[BIN, "--port", "30020", "--explain"],
        ]
        .concat(),
    );
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!words.contains("that does not accept"), "{text}");
    assert!(
        words.contains("handshakes that a process zombiescan could not read (run as root to see it) does not accept"),
        "{text}"
    );
    let note = text.find("note: ").expect("a limitation");
    let verdict = text
        .find("CRITICAL accept_queue_full")
        .expect("the verdict");
    assert!(note < verdict, "the limitation first:\n{text}");
}

#[test]
fn fd_exhaustion_when_the_limit_is_just_above_the_open_fds() {
    live!();
    let mut ns = Netns::new("fd");
    let server = ns.spawn(&["listen", "--port", "30020", "--nofile-headroom", "1"])[0];
    let doc = ns.zombiescan_json(&[]);
    let f: Vec<&Finding> = of_kind(&doc, "fd_exhaustion")
        .into_iter()
        .filter(|f| f.pids == vec![server])
        .collect();
    assert_eq!(f.len(), 1, "{:#?}", doc.findings);
    let (open, limit) = (
        f[0].evidence["fds_open"].as_u64().expect("n"),
        f[0].evidence["fd_limit"].as_u64().expect("n"),
    );
    // The limit is one above what it listed; its accept thread, blocked
    // in accept(2), holds one more descriptor the kernel counts (the fd
    // table's size, what RLIMIT_NOFILE counts): at its limit, or one short.
    assert!(open + 1 == limit || open == limit, "{open} of {limit}");
    let want = if open as f64 / limit as f64 >= 0.95 {
        "critical"
    } else {
        "warning"
    };
    assert_eq!(f[0].severity, want);
    assert_eq!(f[0].ports, vec![30020]);
    assert!(f[0].remediation.contains("LimitNOFILE"));
}

#[test]
fn idle_no_keepalive_only_without_keepalive() {
    live!();
    let mut ns = Netns::new("idle");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&["listen", "--port", "30021", "--keepalive"]);
    let bare = ns.spawn(&["connect", "--port", "30020", "--count", "3"])[0];
    ns.spawn(&["connect", "--port", "30021", "--count", "3", "--keepalive"]);
    ns.wait_accepted(6);
    std::thread::sleep(Duration::from_millis(1200));
    let doc = ns.zombiescan_json(&["--idle", "1s"]);
    let idle = of_kind(&doc, "idle_no_keepalive");
    assert_eq!(idle.len(), 2, "inbound and outbound on 30020: {idle:#?}");
    assert!(idle.iter().all(|f| f.ports == vec![30020] && f.count == 3));
    assert!(idle.iter().any(|f| f.pids == vec![bare]));
    assert!(
        doc.findings.iter().all(|f| !f.ports.contains(&30021)),
        "keepalive on: nothing"
    );
    // Not idle yet by the default threshold.
    let doc = ns.zombiescan_json(&[]);
    assert!(of_kind(&doc, "idle_no_keepalive").is_empty());
}

#[test]
fn fin_wait2_when_the_server_closes_first_and_the_client_never_does() {
    live!();
    let mut ns = Netns::new("fw2");
    let server = ns.spawn(&["listen", "--port", "30020", "--on-accept", "shutdown"])[0];
    let client = ns.spawn(&["connect", "--port", "30020", "--count", "3"])[0];
    ns.wait_accepted(3);
    let doc = ns.scan_until(&["--stall", "1s"], "fin_wait2", |d| {
        !of_kind(d, "fin_wait2").is_empty()
    });
    let f = one(&doc, "fin_wait2", 30020);
    assert_eq!((f.count, f.severity.as_str()), (3, "warning"));
    assert_eq!(
        f.pids,
        vec![server],
        "the server holds its half-closed sockets"
    );
    // The client never closes: its side is the CLOSE_WAIT leak.
    let cw = of_kind(&doc, "close_wait");
    assert_eq!(cw.len(), 1);
    assert_eq!(
        (cw[0].pids.clone(), cw[0].evidence["direction"].as_str()),
        (vec![client], Some("outbound"))
    );
}

#[test]
fn healthy_traffic_raises_no_warning() {
    live!();
    let mut ns = Netns::new("ok");
    ns.spawn(&["listen", "--port", "30020", "--on-accept", "echo"]);
    ns.spawn(&["connect", "--port", "30020", "--count", "5", "--chat"]);
    ns.spawn(&["listen", "--port", "30021", "--keepalive"]);
    ns.spawn(&["connect", "--port", "30021", "--count", "3", "--keepalive"]);
    ns.spawn(&["listen", "--port", "30022", "--on-accept", "close"]);
    ns.spawn(&[
        "connect",
        "--port",
        "30022",
        "--count",
        "4",
        "--then",
        "close-after-peer",
    ]);
    ns.wait_accepted(12);
    // The four client-closed connections reach TIME_WAIT one by one: wait
    // for all four, then past the 1 s thresholds the first scan uses.
    ns.wait_states(&[("TIME_WAIT", 4)]);
    std::thread::sleep(Duration::from_millis(1500));
    for args in [
        &["--idle", "1s", "--stall", "1s"][..],
        &[][..],
        &["--source", "proc"][..],
    ] {
        let doc = ns.zombiescan_json(args);
        assert_eq!(doc.summary.by_state.time_wait, 4, "{args:?}");
        let loud: Vec<&Finding> = doc
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(loud.is_empty(), "{args:?}: false alarms {loud:#?}");
        let out = ns.exec(&[&[crate::netns::BIN, "--fail-on", "warning"], args].concat());
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn ephemeral_ports_and_time_wait_near_their_limits() {
    live!();
    let mut ns = Netns::new("eph");
    // A namespace with a 10-port local range and room for 4 TIME_WAIT.
    for (k, v) in [
        ("net.ipv4.ip_local_port_range", "40000 40009"),
        ("net.ipv4.tcp_max_tw_buckets", "4"),
    ] {
        let out = ns.exec(&["sysctl", "-qw", &format!("{k}={v}")]);
        ok(&out);
    }
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&["listen", "--port", "30021", "--on-accept", "close"]);
    let client = ns.spawn(&["connect", "--port", "30020", "--count", "6"])[0];
    ns.spawn(&[
        "connect",
        "--port",
        "30021",
        "--count",
        "3",
        "--then",
        "close-after-peer",
    ]);
    ns.wait_accepted(9);
    // The three client-closed connections reach TIME_WAIT one by one: wait
    // for all three (a scan between two of them sees 2 of 4 buckets).
    ns.wait_ss("3 TIME_WAIT", |out| {
        ss_counts(out).get("TIME_WAIT").copied().unwrap_or(0) >= 3
    });
    let doc = ns.scan_until(&[], "time_wait_pressure", |d| {
        !of_kind(d, "time_wait_pressure").is_empty()
    });
    let f = one(&doc, "ephemeral_port_exhaustion", 30020);
    assert_eq!(
        (f.count, f.severity.as_str()),
        (6, "warning"),
        "6 of 10 ports"
    );
    assert_eq!(f.pids, vec![client]);
    assert_eq!(f.evidence["ip_local_port_range"], "40000 40009");
    let tw = of_kind(&doc, "time_wait_pressure");
    assert_eq!(
        (tw[0].count, tw[0].severity.as_str()),
        (3, "warning"),
        "3 of 4 buckets"
    );
    assert_eq!(tw[0].evidence["tcp_max_tw_buckets"], 4);
}

/// Scans (with `args`) until a finding of `kind` counts `n` sockets.
pub fn wait_for_finding(ns: &Netns, args: &[&str], kind: &str, n: u32) {
    ns.scan_until(args, &format!("{n} {kind}"), |d| {
        of_kind(d, kind).iter().any(|f| f.count == n)
    });
}
