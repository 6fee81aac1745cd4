//! Parsers on captured kernel output (see fixtures/README.md): the same code
//! the live scan runs, on bytes whose content is known.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use zombiescan::collect::{netlink, procnet};
use zombiescan::model::{Family, Filter, Socket, TcpState, TimerKind};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn proc_sockets(name: &str, family: Family) -> Vec<Socket> {
    let mut out = Vec::new();
    let parsed = procnet::parse(&fixture(name), family, 100, &Filter::default(), &mut out)
        .expect("fixture parses");
    assert_eq!(parsed.bad_lines, 0);
    out
}

fn netlink_sockets(name: &str) -> Vec<Socket> {
    let mut out = Vec::new();
    let d = netlink::parse_datagram(&fixture(name), &mut out).expect("fixture parses");
    assert!(d.done, "the dump ends with NLMSG_DONE");
    assert_eq!(d.bad_records, 0);
    out
}

fn by_state(sockets: &[Socket]) -> BTreeMap<&'static str, u32> {
    let mut m = BTreeMap::new();
    for s in sockets {
        *m.entry(s.state.name()).or_insert(0) += 1;
    }
    m
}

fn find<'a>(sockets: &'a [Socket], local: &str, remote: &str) -> &'a Socket {
    sockets
        .iter()
        .find(|s| s.local.to_string() == local && s.remote.to_string() == remote)
        .unwrap_or_else(|| panic!("{local} -> {remote} not found"))
}

const EXPECTED_V4: [(&str, u32); 6] = [
    ("CLOSE_WAIT", 2),
    ("ESTABLISHED", 7),
    ("FIN_WAIT2", 2),
    ("LISTEN", 3),
    ("SYN_SENT", 1),
    ("TIME_WAIT", 2),
];

#[test]
fn proc_tcp_every_state_and_timer_kind() {
    let v4 = proc_sockets("proc/tcp", Family::Ipv4);
    assert_eq!(by_state(&v4), BTreeMap::from(EXPECTED_V4));

    let persist = find(&v4, "127.0.0.1:30022", "127.0.0.1:55244");
    assert_eq!(persist.timer.kind, TimerKind::Persist);
    assert_eq!(persist.send_q, 2_803_712);
    let ka = find(&v4, "127.0.0.1:34230", "127.0.0.1:30020");
    assert_eq!(ka.timer.kind, TimerKind::Keepalive);
    assert_eq!(ka.timer.expires(), Duration::from_millis(7_197_740));
    let syn = find(&v4, "10.231.0.1:49390", "10.231.0.2:30030");
    assert_eq!(syn.state, TcpState::SynSent);
    assert_eq!(syn.timer.kind, TimerKind::Retransmit);
    assert_eq!(syn.timer.count, 1);
    assert_eq!(syn.timer.expires(), Duration::from_millis(490));
    let tw = find(&v4, "127.0.0.1:30021", "127.0.0.1:41574");
    assert_eq!(
        (tw.state, tw.timer.kind, tw.inode),
        (TcpState::TimeWait, TimerKind::TimeWait, 0)
    );
    let cw = find(&v4, "127.0.0.1:30020", "127.0.0.1:34248");
    assert_eq!(
        (cw.state, cw.recv_q, cw.timer.kind),
        (TcpState::CloseWait, 1, TimerKind::Off)
    );
    assert_eq!(cw.inode, 15871);
    let orphan = find(&v4, "127.0.0.1:34248", "127.0.0.1:30020");
    assert_eq!((orphan.state, orphan.inode), (TcpState::FinWait2, 0));
}

#[test]
fn proc_tcp6_native_and_ipv4_mapped() {
    let v6 = proc_sockets("proc/tcp6", Family::Ipv6);
    assert_eq!(v6.len(), 4);
    assert!(v6.iter().all(|s| s.family == Family::Ipv6));
    find(&v6, "[::]:30023", "[::]:0");
    find(&v6, "[::1]:47076", "[::1]:30023");
    let mapped = find(&v6, "[::ffff:127.0.0.1]:30023", "[::ffff:127.0.0.1]:40744");
    assert_eq!(mapped.state, TcpState::Established);
}

#[test]
fn netlink_dump_matches_proc_and_carries_tcp_info() {
    let v4 = netlink_sockets("netlink/inet4.bin");
    let v6 = netlink_sockets("netlink/inet6.bin");
    assert_eq!(by_state(&v4), BTreeMap::from(EXPECTED_V4));
    assert_eq!(v6.len(), 4);
    let key = |s: &Socket| (s.local, s.remote, s.state, s.inode);
    let proc4: BTreeSet<_> = proc_sockets("proc/tcp", Family::Ipv4)
        .iter()
        .map(key)
        .collect();
    let nl4: BTreeSet<_> = v4.iter().map(key).collect();
    assert_eq!(proc4, nl4, "the two sources see the same sockets");

    for s in &v4 {
        assert!(s.cookie.is_some());
        // Full sockets carry tcp_info; timewait socks (TIME_WAIT and the
        // orphaned FIN_WAIT2) do not.
        assert_eq!(s.tcp_info.is_some(), s.inode != 0, "{s:?}");
    }
    let persist = find(&v4, "127.0.0.1:30022", "127.0.0.1:55244");
    assert_eq!(persist.timer.kind, TimerKind::Persist);
    let ti = persist.tcp_info.as_ref().expect("tcp_info");
    assert_eq!(ti.snd_wnd(), Some(0), "the peer's window is zero");
    assert_eq!(ti.notsent_bytes(), Some(2_803_712));
    assert!(ti.backoff().is_some_and(|b| b > 0));
    let syn = find(&v4, "10.231.0.1:49390", "10.231.0.2:30030");
    assert_eq!(
        (syn.timer.kind, syn.timer.count),
        (TimerKind::Retransmit, 1)
    );
    let ti = syn.tcp_info.as_ref().expect("tcp_info");
    assert_eq!((ti.unacked(), ti.lost()), (Some(1), Some(1)));
    let tw = find(&v4, "127.0.0.1:30021", "127.0.0.1:41574");
    assert_eq!(tw.timer.kind, TimerKind::TimeWait);
    assert!(
        tw.timer.expires() > Duration::from_secs(50)
            && tw.timer.expires() <= Duration::from_secs(60)
    );
    let lst = find(&v4, "127.0.0.1:30020", "0.0.0.0:0");
    assert_eq!(
        (lst.state, lst.recv_q, lst.send_q),
        (TcpState::Listen, 0, 128),
        "Send-Q is the backlog"
    );
    find(&v6, "[::ffff:127.0.0.1]:30023", "[::ffff:127.0.0.1]:40744");
}

#[test]
fn netlink_dump_with_short_tcp_info_still_parses() {
    // Rewrite every INET_DIAG_INFO attribute of the capture to 192 bytes,
    // what a 4.19 kernel sends, and fix the lengths around it.
    let raw = fixture("netlink/inet4.bin");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let len = u32::from_ne_bytes(raw[pos..pos + 4].try_into().unwrap()) as usize;
        let msg = &raw[pos..pos + len];
        pos += (len + 3) & !3;
        if msg.len() < 16 + 72 {
            out.extend_from_slice(msg); // NLMSG_DONE
            continue;
        }
        let mut rebuilt = msg[..16 + 72].to_vec();
        let mut a = 16 + 72;
        while a + 4 <= msg.len() {
            let alen = u16::from_ne_bytes([msg[a], msg[a + 1]]) as usize;
            let kind = u16::from_ne_bytes([msg[a + 2], msg[a + 3]]);
            let keep = if kind == 2 { 4 + 192 } else { alen };
            let mut attr = msg[a..a + keep.min(alen)].to_vec();
            let attr_len = attr.len() as u16;
            attr[..2].copy_from_slice(&attr_len.to_ne_bytes());
            rebuilt.extend_from_slice(&attr);
            while !rebuilt.len().is_multiple_of(4) {
                rebuilt.push(0);
            }
            a += (alen + 3) & !3;
        }
        let n = rebuilt.len() as u32;
        rebuilt[..4].copy_from_slice(&n.to_ne_bytes());
        out.extend_from_slice(&rebuilt);
    }
    let mut sockets = Vec::new();
    let d = netlink::parse_datagram(&out, &mut sockets).expect("short tcp_info parses");
    assert!(d.done);
    assert_eq!(sockets.len(), 17);
    let persist = find(&sockets, "127.0.0.1:30022", "127.0.0.1:55244");
    let ti = persist.tcp_info.as_ref().expect("tcp_info");
    assert_eq!(ti.snd_wnd(), None, "not sent by an old kernel");
    assert!(ti.backoff().is_some_and(|b| b > 0));
    assert!(ti.last_data_recv().is_some());
}

#[test]
fn malformed_input_is_an_error_or_a_count_never_a_panic() {
    let mut out = Vec::new();
    let f = Filter::default();
    let err = procnet::parse(&fixture("proc/empty"), Family::Ipv4, 100, &f, &mut out)
        .expect_err("empty file");
    assert!(err.to_string().contains("empty"), "{err}");
    let err = procnet::parse(&fixture("proc/garbage"), Family::Ipv4, 100, &f, &mut out)
        .expect_err("garbage");
    assert!(err.to_string().contains("/proc/net/tcp"), "{err}");
    let parsed = procnet::parse(
        &fixture("proc/tcp-truncated"),
        Family::Ipv4,
        100,
        &f,
        &mut out,
    )
    .expect("a truncated last line is skipped, not fatal");
    assert_eq!(parsed.bad_lines, 1);
    assert_eq!(out.len(), 8);

    let mut out = Vec::new();
    let err = netlink::parse_datagram(&fixture("netlink/truncated.bin"), &mut out)
        .expect_err("a frame cut mid-message");
    assert!(err.to_string().contains("netlink"), "{err}");
    // Every prefix of a real dump: an error or fewer sockets, never a panic.
    let raw = fixture("netlink/inet4.bin");
    for cut in 0..raw.len() {
        let mut out = Vec::new();
        let _ = netlink::parse_datagram(&raw[..cut], &mut out);
        assert!(out.len() <= 17);
    }
}

/// The captured namespace as a snapshot: its sockets, one owner per inode,
/// a fixed time and host, so that classification and rendering are
/// deterministic.
pub fn fixture_snapshot() -> zombiescan::model::Snapshot {
    use std::collections::BTreeMap;
    use zombiescan::model::{Gaps, Host, InodeMap, Netns, Process, Snapshot, Source};
    let mut sockets = netlink_sockets("netlink/inet4.bin");
    sockets.extend(netlink_sockets("netlink/inet6.bin"));
    let server = |pid: u32, comm: &str, cmdline: &str| Process {
        ppid: None,
        parent_cmdline: None,
        container: None,
        pid,
        comm: comm.as_bytes().to_vec(),
        cmdline: cmdline.as_bytes().to_vec(),
        uid: Some(1000),
        fds_open: 12,
        fd_limit: Some(1024),
    };
    for s in sockets.iter_mut().filter(|s| s.inode != 0) {
        // Servers on 30020-30023 are pid 100 (uvicorn), clients pid 200.
        s.owner = if (30020..=30023).contains(&s.local.port()) {
            100
        } else {
            200
        };
    }
    let mut processes = BTreeMap::new();
    processes.insert(
        100,
        server(
            100,
            "uvicorn",
            "/srv/venv/bin/uvicorn app:app --port 30020 --reload",
        ),
    );
    processes.insert(
        200,
        server(200, "python3", "python3 client.py --name=a|b\nc"),
    );
    let sysctls = [
        ("net.ipv4.ip_local_port_range", "32768 60999"),
        ("net.ipv4.tcp_fin_timeout", "60"),
        ("net.ipv4.tcp_keepalive_time", "7200"),
        ("net.ipv4.tcp_retries2", "15"),
        ("net.core.somaxconn", "4096"),
    ];
    Snapshot {
        captured_at: std::time::UNIX_EPOCH + Duration::from_secs(1_795_575_845),
        source: Source::Netlink,
        filter: Default::default(),
        sockets,
        folded: Default::default(),
        shared: InodeMap::default(),
        processes,
        owners_walked: true,
        owners_from: None,
        netns: Netns {
            inode: Some(4026532000),
            own: true,
            ..Netns::default()
        },
        host: Host {
            hostname: "api-1".into(),
            kernel: "6.18.44".into(),
            files_allocated: Some(2176),
            files_max: Some(1_000_000),
            sysctls: sysctls
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Host::default()
        },
        gaps: Gaps::default(),
        hints: Vec::new(),
        neighbours: Vec::new(),
        forwarded: Vec::new(),
        unix: Vec::new(),
        unix_links: Vec::new(),
        waiting: Vec::new(),
    }
}

#[test]
fn the_captured_namespace_classified() {
    use zombiescan::classify::{Kind, Severity, Thresholds, classify};
    let snap = fixture_snapshot();
    let t = Thresholds {
        stall: Duration::from_secs(1),
        ..Thresholds::default()
    };
    let got: Vec<(Kind, Severity, u32, Vec<u16>)> = classify(&snap, &t)
        .into_iter()
        .map(|f| (f.kind, f.severity, f.count, f.ports))
        .collect();
    assert_eq!(
        got,
        vec![
            (Kind::CloseWait, Severity::Warning, 2, vec![30020]),
            // The server writing to a client that does not read, and that
            // client, whose unread bytes wait in its Recv-Q.
            (Kind::PeerNotReading, Severity::Warning, 1, vec![30022]),
            (Kind::AppNotReading, Severity::Warning, 1, vec![30022]),
            (Kind::FinWait2, Severity::Info, 2, vec![30020]),
        ]
    );
    // The default stall (10 s) is longer than these sockets had been stuck.
    let quiet: Vec<Kind> = classify(&snap, &Thresholds::default())
        .into_iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| f.kind)
        .collect();
    assert!(quiet.is_empty(), "{quiet:?}");
}

/// Compares rendered output with `fixtures/golden/NAME`;
/// `ZOMBIESCAN_BLESS=1` rewrites it.
fn golden(name: &str, rendered: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/golden")
        .join(name);
    if std::env::var_os("ZOMBIESCAN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, rendered).expect("write");
    }
    let want = std::fs::read(&path).unwrap_or_default();
    assert!(
        want == rendered,
        "{name} changed; review and bless with ZOMBIESCAN_BLESS=1:\n{}",
        String::from_utf8_lossy(rendered)
    );
}

#[test]
fn table_and_markdown_renderings_of_the_captured_namespace() {
    use zombiescan::classify::{Thresholds, classify};
    use zombiescan::render::{markdown, table};
    use zombiescan::report::{Options, Report};
    let snap = fixture_snapshot();
    let t = Thresholds {
        stall: Duration::from_secs(1),
        ..Thresholds::default()
    };
    let report = Report::new(&snap, classify(&snap, &t), &Options::default());
    let mut txt = Vec::new();
    table::write(&report, table::Look::default(), &mut txt).expect("table");
    golden("report.txt", &txt);
    // --explain: every finding in full, with its evidence and sources.
    let mut long = Vec::new();
    let look = table::Look {
        explain: true,
        ..table::Look::default()
    };
    table::write(&report, look, &mut long).expect("table");
    golden("report-explain.txt", &long);
    // On a screen: nothing wider than it, no number or address broken, and
    // what was left out said.
    for width in [80, 120, 200] {
        let mut out = Vec::new();
        let look = table::Look {
            color: false,
            width: Some(width),
            explain: false,
        };
        table::write(&report, look, &mut out).expect("table");
        // 200 columns only has to fit: the narrow ones are the goldens.
        if width != 200 {
            golden(&format!("report-{width}.txt"), &out);
        }
        let text = String::from_utf8(out).expect("utf-8");
        for l in text.lines() {
            assert!(l.chars().count() <= width, "{width}: {l}");
        }
        for whole in ["127.0.0.1:30022", "127.0.0.1:55244", "2803712", "1024"] {
            assert!(text.contains(whole), "{width}: {whole} broken:\n{text}");
        }
    }
    let mut md = Vec::new();
    markdown::write(
        std::slice::from_ref(&report),
        "zombiescan --stall 1s --format markdown",
        &mut md,
    )
    .expect("markdown");
    golden("report.md", &md);
    let md = String::from_utf8(md).expect("utf-8");
    // A hostile command line stays inside its table cell.
    let row = md
        .lines()
        .find(|l| l.starts_with("| 200 |"))
        .expect("client row");
    assert!(row.contains("a\\|b\\\\x0ac"), "{row}");
    assert!(!txt.contains(&0x1b), "no colour when not asked");

    let mut prom = Vec::new();
    zombiescan::render::prometheus::write(
        std::slice::from_ref(&report),
        &Default::default(),
        &mut prom,
    )
    .expect("prometheus");
    golden("report.prom", &prom);
    let series = assert_exposition(&String::from_utf8(prom).expect("utf-8"));
    let value = |name: &str, labels: &str| {
        series
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(labels))
            .map(|(_, v)| *v)
    };
    assert_eq!(
        value("zombiescan_sockets", "state=\"CLOSE_WAIT\""),
        Some(2.0)
    );
    assert_eq!(value("zombiescan_sockets", "state=\"CLOSING\""), Some(0.0));
    assert_eq!(
        value("zombiescan_finding_severity", "kind=\"close_wait\""),
        Some(2.0)
    );
    assert_eq!(
        value("zombiescan_finding_sockets", "kind=\"half_open\""),
        Some(0.0),
        "every kind, zeros included"
    );
}

/// Checks a Prometheus text exposition (format 0.0.4) line by line: each
/// family has one HELP and one TYPE before its samples, each sample is
/// `NAME{LABELS} VALUE` of the family announced, labels well formed and
/// escaped, the value a number, no series twice. Returns series → value.
pub fn assert_exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut series = std::collections::BTreeMap::new();
    let mut families = std::collections::BTreeSet::new();
    let mut current = String::new();
    let mut typed = false;
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            assert!(is_name(name), "{line}");
            assert!(families.insert(name.to_string()), "family twice: {line}");
            current = name.to_string();
            typed = false;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type");
            assert_eq!(name, current, "TYPE after its HELP: {line}");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed = true;
            continue;
        }
        assert!(typed, "a sample before its family's HELP and TYPE: {line}");
        let (key, value) = line.rsplit_once(' ').expect("NAME{LABELS} VALUE");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        let (name, labels) = key.split_once('{').unwrap_or((key, "}"));
        assert_eq!(name, current, "{line}");
        let mut rest = labels.strip_suffix('}').expect("closing brace");
        while !rest.is_empty() {
            let (label, after) = rest.split_once("=\"").expect("label=\"");
            assert!(is_name(label), "label name {label:?}: {line}");
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect("closing quote") {
                    (_, '\\') => {
                        let (_, c) = chars.next().expect("escape");
                        assert!(['\\', '"', 'n'].contains(&c), "escape \\{c}: {line}");
                    }
                    (_, '\n') => panic!("raw line feed: {line}"),
                    (i, '"') => break i,
                    _ => {}
                }
            };
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        assert!(
            series.insert(key.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    series
}
