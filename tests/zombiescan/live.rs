//! Live scenarios: real sockets in namespaces the tests create, checked
//! against what was built and against `ss` on the same namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;

use zombiescan::collect::netlink::{Dumper, parse_datagram};
use zombiescan::model::{Family, Socket};
use zombiescan::render::json::{ByState, Document};

use crate::netns::{Netns, live_or_skip, ok, ss_counts};

/// Non-zero counts by kernel state name.
pub fn nonzero(b: &ByState) -> BTreeMap<String, u32> {
    let v = serde_json::to_value(b).expect("by_state");
    v.as_object()
        .expect("object")
        .iter()
        .filter_map(|(k, n)| {
            let n = n.as_u64().expect("count") as u32;
            (n > 0).then(|| (k.clone(), n))
        })
        .collect()
}

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// `ss -tanpH`: (local, remote) → the pids holding the socket.
fn ss_owners(out: &str) -> BTreeMap<(String, String), BTreeSet<u32>> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let pids: BTreeSet<u32> = line
            .split("pid=")
            .skip(1)
            .filter_map(|p| p.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .collect();
        let norm = |a: &str| a.replace(":*", ":0");
        m.insert((norm(f[3]), norm(f[4])), pids);
    }
    m
}

fn check_owners_against_ss(ns: &Netns, doc: &Document) {
    let ss = ss_owners(&ns.ss(&["-tanpH"]));
    assert_eq!(doc.sockets.len(), ss.len(), "socket count vs ss -tanp");
    for s in &doc.sockets {
        let key = (s.local.clone(), s.remote.clone());
        let want = ss
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in ss: {ss:?}"));
        let got: BTreeSet<u32> = s.pids.iter().copied().collect();
        assert_eq!(&got, want, "owners of {key:?}");
    }
}

#[test]
fn counts_and_owners_match_what_was_built_and_ss() {
    live!();
    let mut ns = Netns::new("core");
    // Two forked workers share one listener; 5 connections held open; 3
    // closed by the client, which the server never closes.
    let workers = ns.spawn(&["listen", "--port", "30020", "--workers", "2"]);
    let holder = ns.spawn(&["connect", "--port", "30020", "--count", "5"])[0];
    let closer = ns.spawn(&[
        "connect", "--port", "30020", "--count", "3", "--then", "close",
    ])[0];
    ns.wait_accepted(8);
    let expected = counts(&[
        ("ESTABLISHED", 10),
        ("CLOSE_WAIT", 3),
        ("FIN_WAIT2", 3),
        ("LISTEN", 1),
    ]);
    ns.wait_ss("the built states", |out| ss_counts(out) == expected);

    // The kernel's walk (BPF, where the build had clang) and the /proc
    // walk, with each socket source: the same owners, those ss shows.
    let bpf = bpf_built();
    for (source, owners) in [
        ("netlink", "bpf"),
        ("netlink", "proc"),
        ("proc", "bpf"),
        ("proc", "proc"),
    ] {
        let doc = ns.zombiescan_json_owners(&["--sockets", "--source", source], owners);
        let want = if owners == "bpf" && !bpf {
            "proc"
        } else {
            owners
        };
        assert_eq!(doc.owners_from.as_deref(), Some(want), "{source}, {owners}");
        assert_eq!(doc.source, source);
        assert_eq!(
            nonzero(&doc.summary.by_state),
            expected,
            "{source}: by state"
        );
        assert_eq!(doc.summary.total, 17);
        assert_eq!(doc.summary.by_family.ipv4, 17);
        assert_eq!(
            nonzero(&doc.summary.by_state),
            ss_counts(&ns.ss(&["-tanH"])),
            "{source}: vs ss"
        );
        check_owners_against_ss(&ns, &doc);

        // The listener belongs to both workers; the accepted sockets to one
        // of them each; the closed client sockets (FIN_WAIT2) to nobody.
        let listener = doc
            .sockets
            .iter()
            .find(|s| s.state == "LISTEN")
            .expect("listener");
        let mut lp = listener.pids.clone();
        lp.sort_unstable();
        let mut w = workers.clone();
        w.sort_unstable();
        assert_eq!(lp, w, "{source}: listener owners");
        for s in doc.sockets.iter().filter(|s| s.state == "FIN_WAIT2") {
            assert!(s.pids.is_empty(), "{source}: orphan has no owner");
            assert_eq!(s.inode, 0);
        }
        let by_pid: BTreeMap<u32, &zombiescan::render::json::Process> =
            doc.processes.iter().map(|p| (p.pid, p)).collect();
        assert_eq!(by_pid[&holder].sockets, 5);
        assert_eq!(by_pid[&holder].by_state.established, 5);
        assert!(!by_pid.contains_key(&closer), "the closer holds no socket");
        let server_cw: u32 = workers.iter().map(|p| by_pid[p].by_state.close_wait).sum();
        let server_est: u32 = workers.iter().map(|p| by_pid[p].by_state.established).sum();
        assert_eq!(
            (server_cw, server_est),
            (3, 5),
            "{source}: server-side states"
        );
        for p in &workers {
            assert_eq!(by_pid[p].by_state.listen, 1);
            assert!(by_pid[p].fd_limit.is_some() && by_pid[p].fds_open >= 1);
            assert!(by_pid[p].cmdline.contains("sockets.py"));
        }
        // Inbound on the server port, outbound to it from the clients.
        let inbound = doc
            .ports
            .iter()
            .find(|p| p.direction == "inbound" && p.port == 30020)
            .expect("inbound 30020");
        assert_eq!(inbound.total, 9);
        assert_eq!(inbound.by_state.close_wait, 3);
        let outbound = doc
            .ports
            .iter()
            .find(|p| p.direction == "outbound" && p.port == 30020)
            .expect("outbound 30020");
        assert_eq!(outbound.remote.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            (outbound.by_state.established, outbound.by_state.fin_wait2),
            (5, 3)
        );
        if source == "netlink" && owners == "bpf" {
            same_owners_by_either_walk(&ns);
        }
        if source == "netlink" {
            same_report_folded(&ns, &doc, owners);
        }
        if source == "netlink" {
            // Orphaned FIN_WAIT2 sockets live on as timewait socks: no
            // tcp_info. Every full socket has it.
            assert!(doc.sockets.iter().all(|s| s.cookie.is_some()));
            assert!(
                doc.sockets
                    .iter()
                    .filter(|s| s.inode != 0)
                    .all(|s| s.tcp_info.is_some())
            );
        } else {
            assert!(doc.sockets.iter().all(|s| s.tcp_info.is_none()));
            assert!(doc.limitations.iter().any(|l| l.contains("no tcp_info")));
        }
    }
}

/// Without `--sockets`, a scan folds the healthy connections into counts
/// as the dump streams: the report counts, groups and owns what it does
/// with `--sockets` (`full`), and the ten ESTABLISHED connections were
/// folded, each with its owner, not kept.
fn same_report_folded(ns: &Netns, full: &Document, owners: &str) {
    use zombiescan::collect::{self, ScanOptions};
    let doc = ns.zombiescan_json_owners(&["--source", "netlink"], owners);
    assert_eq!(json(&doc.summary), json(&full.summary), "{owners}: summary");
    assert_eq!(json(&doc.ports), json(&full.ports), "{owners}: ports");
    assert_eq!(
        json(&doc.processes),
        json(&full.processes),
        "{owners}: processes"
    );
    assert!(doc.sockets.iter().all(|s| s.state != "ESTABLISHED"));
    let opts = ScanOptions {
        fold: Some(zombiescan::classify::Thresholds::default()),
        ..ns.scan_options(true)
    };
    let snap = collect::scan(&opts, None).expect("scan").remove(0);
    assert_eq!(snap.folded.sockets.len(), 10, "the healthy connections");
    assert!(snap.folded.sockets.iter().all(|f| f.owner != 0));
    assert!(
        snap.sockets
            .iter()
            .all(|s| s.state != zombiescan::model::TcpState::Established)
    );
}

/// A part of a document as a JSON value, to compare.
fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

/// A `--port` scan (the kernel's walk beside the two dumps) finds the
/// same owners and processes by either walk.
fn same_owners_by_either_walk(ns: &Netns) {
    let of = |d: &Document| -> BTreeMap<(String, String), Vec<u32>> {
        d.sockets
            .iter()
            .map(|s| {
                let mut p = s.pids.clone();
                p.sort_unstable();
                ((s.local.clone(), s.remote.clone()), p)
            })
            .collect()
    };
    let procs = |d: &Document| -> Vec<(u32, u32, u32, u32)> {
        d.processes
            .iter()
            .map(|p| (p.pid, p.sockets, p.by_state.close_wait, p.fds_open))
            .collect()
    };
    let args = ["--port", "30020", "--sockets"];
    let bpf = ns.zombiescan_json_owners(&args, "bpf");
    let proc = ns.zombiescan_json_owners(&args, "proc");
    assert_eq!(bpf.owners_from.as_deref(), Some("bpf"));
    assert_eq!(proc.owners_from.as_deref(), Some("proc"));
    assert!(of(&bpf).values().any(|p| !p.is_empty()), "owners found");
    assert_eq!(of(&bpf), of(&proc), "owners by either walk");
    assert_eq!(procs(&bpf), procs(&proc), "processes by either walk");
}

/// Whether this build has the BPF owner lookup: it does where clang was
/// there to build it (build.rs), which CI installs; elsewhere its absence
/// is said, loudly.
pub fn bpf_built() -> bool {
    let clang = std::process::Command::new("clang")
        .arg("--version")
        .output()
        .is_ok();
    if !clang {
        crate::netns::skip(
            "the BPF owner lookup",
            "built without clang: owners come from /proc only (bash .ci/run installs clang)",
        );
    }
    clang
}

/// Runs `f` on a thread that has entered the namespace (setns affects only
/// the calling thread).
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.path();
    std::thread::spawn(move || {
        let fd = File::open(&path).expect("open netns");
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// The sockets the kernel sends for `ports`, asked in one request for both
/// families; checked against one request per family.
fn raw_dump(ports: &'static [u16]) -> Vec<Socket> {
    let mut d = Dumper::open().expect("netlink");
    let mut both = Vec::new();
    d.dump_raw(None, 0x1ffe, ports, |dg| {
        Ok(parse_datagram(dg, &mut both)?.done)
    })
    .expect("dump");
    let mut each = Vec::new();
    for fam in [Family::Ipv4, Family::Ipv6] {
        d.dump_raw(Some(fam), 0x1ffe, ports, |dg| {
            Ok(parse_datagram(dg, &mut each)?.done)
        })
        .expect("dump");
    }
    let key = |s: &Socket| (s.local, s.remote, s.inode);
    let mut a: Vec<_> = both.iter().map(key).collect();
    let mut b: Vec<_> = each.iter().map(key).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "one request for both families = one per family");
    assert!(both.iter().all(|s| s.tcp_info.is_some() || s.inode == 0));
    both
}

#[test]
fn kernel_bytecode_returns_only_the_asked_port() {
    live!();
    let mut ns = Netns::new("bc");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&["listen", "--port", "30021"]);
    ns.spawn(&["listen", "--host", "::1", "--port", "30022"]);
    ns.spawn(&["connect", "--port", "30020", "--count", "2"]);
    ns.spawn(&["connect", "--port", "30021", "--count", "3"]);
    ns.spawn(&[
        "connect", "--host", "::1", "--port", "30022", "--count", "1",
    ]);
    ns.wait_accepted(6);
    ns.wait_ss("15 sockets", |out| out.lines().count() == 15);

    // Straight from the kernel, no filtering in user space: the datagrams
    // hold only what the bytecode let through.
    let all = in_netns(&ns, || raw_dump(&[]));
    assert_eq!(all.len(), 15);
    let only = in_netns(&ns, || raw_dump(&[30020]));
    assert_eq!(only.len(), 5, "listener + 2 client + 2 server sockets");
    assert!(
        only.iter()
            .all(|s| s.local.port() == 30020 || s.remote.port() == 30020)
    );
    let two = in_netns(&ns, || raw_dump(&[30021, 30022]));
    assert_eq!(two.len(), 7 + 3);
    assert!(two.iter().all(|s| {
        [s.local.port(), s.remote.port()]
            .iter()
            .any(|p| *p == 30021 || *p == 30022)
    }));

    let doc = ns.zombiescan_json(&["--port", "30020"]);
    assert_eq!(doc.filter.ports, vec![30020]);
    assert_eq!(doc.summary.total, 5);
    let proc_doc = ns.zombiescan_json(&["--port", "30020", "--source", "proc"]);
    assert_eq!(proc_doc.summary.total, 5);
    assert_eq!(
        nonzero(&proc_doc.summary.by_state),
        nonzero(&doc.summary.by_state)
    );
}

/// Rebuilds `fixtures/` from a namespace holding every state and timer kind
/// the parsers must read. Run by hand, as root:
/// `cargo test --test zombiescan -- --ignored capture_fixtures`.
#[test]
#[ignore]
fn capture_fixtures() {
    assert!(live_or_skip("capture_fixtures"), "capture needs root");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut ns = Netns::new("fix");
    let peer = Netns::new("fixpeer");
    ns.veth_to(&peer, "10.231.0.1", "10.231.0.2");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&["listen", "--port", "30021", "--on-accept", "close"]);
    ns.spawn(&["listen", "--port", "30022", "--on-accept", "write"]);
    ns.spawn(&["listen", "--host", "::", "--port", "30023"]);
    ns.spawn(&["connect", "--port", "30020", "--count", "2", "--keepalive"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.spawn(&[
        "connect",
        "--port",
        "30021",
        "--count",
        "2",
        "--then",
        "close-after-peer",
    ]);
    ns.spawn(&[
        "connect", "--port", "30022", "--count", "1", "--rcvbuf", "4096",
    ]);
    ns.spawn(&["connect", "--port", "30023", "--count", "1"]);
    ns.spawn(&[
        "connect", "--host", "::1", "--port", "30023", "--count", "1",
    ]);
    // A peer whose answers are blackholed: the SYN is retransmitted.
    let out = peer.exec(&["ip", "route", "add", "blackhole", "10.231.0.1/32"]);
    ok(&out);
    ns.spawn(&[
        "connect",
        "--host",
        "10.231.0.2",
        "--port",
        "30030",
        "--nonblocking",
    ]);
    ns.wait_accepted(9);
    std::thread::sleep(std::time::Duration::from_millis(1500));

    std::fs::create_dir_all(dir.join("proc")).expect("mkdir");
    std::fs::create_dir_all(dir.join("netlink")).expect("mkdir");
    for f in ["tcp", "tcp6"] {
        let out = ns.exec(&["cat", &format!("/proc/net/{f}")]);
        std::fs::write(dir.join("proc").join(f), &out.stdout).expect("write");
    }
    for (fam, name) in [(Family::Ipv4, "inet4.bin"), (Family::Ipv6, "inet6.bin")] {
        let raw = in_netns(&ns, move || {
            let mut d = Dumper::open().expect("netlink");
            let mut raw = Vec::new();
            d.dump_raw(Some(fam), 0x1ffe, &[], |dg| {
                raw.extend_from_slice(dg);
                Ok(parse_datagram(dg, &mut Vec::new())?.done)
            })
            .expect("dump");
            raw
        });
        std::fs::write(dir.join("netlink").join(name), raw).expect("write");
    }
    let ss = ns.ss(&["-tanoi"]);
    std::fs::write(dir.join("ss-tanoi.txt"), ss).expect("write");
}

#[test]
fn as_another_user_every_socket_is_listed_and_the_unattributed_counted() {
    live!();
    let mut ns = Netns::new("nobody");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&["connect", "--port", "30020", "--count", "4"]);
    ns.wait_accepted(4);
    ns.wait_ss("9 sockets", |out| out.lines().count() == 9);
    let out = ns.exec(&[&crate::netns::AS_NOBODY[..], &[crate::netns::BIN, "--json"]].concat());
    ok(&out);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc.summary.total, 9, "every socket listed without root");
    assert!(
        doc.processes.is_empty(),
        "root's processes are not readable"
    );
    assert!(
        doc.limitations
            .iter()
            .any(|l| l.starts_with("9 sockets have no known owner:") && l.contains("run as root")),
        "{:?}",
        doc.limitations
    );
    // The kernel's walk, asked for, needs CAP_BPF: the refusal is said.
    let out = ns.exec(
        &[
            &crate::netns::AS_NOBODY[..],
            &["env", "ZOMBIESCAN_OWNERS=bpf", crate::netns::BIN, "--json"],
        ]
        .concat(),
    );
    ok(&out);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        doc.limitations.iter().any(|l| l.starts_with(
            "ZOMBIESCAN_OWNERS=bpf, but the kernel's walk could not be used (no CAP_BPF"
        ) && l.ends_with("owners from /proc")),
        "{:?}",
        doc.limitations
    );
    // Two clients leave: the CLOSE_WAIT a root process holds are of an
    // unknown owner to nobody, never "orphaned".
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.wait_states(&[("CLOSE_WAIT", 2)]);
    let nobody = |args: &[&str]| {
        let out = ns.exec(&[&crate::netns::AS_NOBODY[..], &[crate::netns::BIN], args].concat());
        ok(&out);
        out.stdout
    };
    let doc: Document =
        serde_json::from_slice(&nobody(&["--stall", "0s", "--json"])).expect("json");
    let cw = doc
        .findings
        .iter()
        .find(|f| f.kind == "close_wait")
        .expect("close_wait");
    assert_eq!(cw.evidence["owner_unknown"], 2);
    assert!(
        cw.explanation.contains("could not read (run as root"),
        "{}",
        cw.explanation
    );
    assert!(!cw.explanation.contains("orphan"), "{}", cw.explanation);
    // From the host's namespace, nobody cannot look into this one: the
    // hint says so instead of "nothing listens anywhere".
    let out = crate::netns::as_nobody()
        .args([crate::netns::BIN, "--port", "30020", "--json"])
        .output()
        .expect("setpriv");
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    if doc.summary.total == 0 {
        assert!(
            doc.hints
                .iter()
                .any(|h| h.contains("could not be entered (run as root to look into them)")),
            "{:?}",
            doc.hints
        );
        assert!(!doc.hints.iter().any(|h| h.contains("or any other")));
    }
}

#[test]
fn prometheus_exposition_of_a_live_namespace() {
    live!();
    let mut ns = Netns::new("prom");
    let server = ns.close_wait_leak(3, 2);
    let out = ns.zombiescan(&[
        "--port",
        "30020",
        "--stall",
        "0s",
        "--format",
        "prometheus",
        "--pid-labels",
    ]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let series = crate::fixtures::assert_exposition(&text);
    let value = |name: &str, labels: &[&str]| -> f64 {
        let hits: Vec<f64> = series
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}{{")))
            .filter(|(k, _)| labels.iter().all(|l| k.contains(l)))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {labels:?}:\n{text}");
        hits[0]
    };
    // Every socket of the namespace is on port 30020.
    let ss = ss_counts(&ns.ss(&["-tanH"]));
    for (state, n) in &ss {
        assert_eq!(
            value("zombiescan_sockets", &[&format!("state=\"{state}\"")]),
            f64::from(*n),
            "{state}"
        );
    }
    assert_eq!(
        value("zombiescan_sockets", &["state=\"SYN_SENT\""]),
        0.0,
        "absent states are 0"
    );
    let pid = format!("pid=\"{server}\"");
    assert_eq!(
        value(
            "zombiescan_process_sockets",
            &[&pid, "state=\"CLOSE_WAIT\""]
        ),
        3.0
    );
    assert!(value("zombiescan_process_fd_limit", &[&pid]) >= 1024.0);
    assert_eq!(
        value("zombiescan_finding_sockets", &["kind=\"close_wait\""]),
        3.0
    );
    assert_eq!(
        value("zombiescan_finding_severity", &["kind=\"close_wait\""]),
        2.0,
        "warning"
    );
    // Named as `ip netns` names it, no inode: a series outlives the namespace's
    // re-creation.
    let netns = format!("netns_name=\"{}\",container=\"\"", ns.name());
    assert!(series.keys().all(|k| k.contains(&netns)), "{text}");
    assert!(!text.contains(&ns_inode(&ns).to_string()), "{text}");
    // Without --pid-labels, the processes of a name are one series.
    let by_comm = ns.zombiescan(&["--port", "30020", "--stall", "0s", "--format", "prometheus"]);
    let by_comm = String::from_utf8(by_comm.stdout).expect("utf-8");
    let by_comm = crate::fixtures::assert_exposition(&by_comm);
    assert!(!by_comm.keys().any(|k| k.contains("pid=")));
    assert_eq!(
        by_comm[&format!(
            "zombiescan_process_sockets{{{netns},comm=\"python3\",state=\"CLOSE_WAIT\"}}"
        )],
        3.0
    );

    // Every namespace of the host in one exposition: one set of series
    // each, told apart by the netns label.
    let all = std::process::Command::new(crate::netns::BIN)
        .args(["--all-netns", "--format", "prometheus"])
        .output()
        .expect("run");
    ok(&all);
    let all = crate::fixtures::assert_exposition(&String::from_utf8(all.stdout).expect("utf-8"));
    let states_of = |ns: &str| {
        all.keys()
            .filter(|k| k.starts_with("zombiescan_sockets{") && k.contains(ns))
            .count()
    };
    assert_eq!(states_of(&netns), 11, "the test's namespace, every state");
    assert!(
        all.keys()
            .filter(|k| k.starts_with("zombiescan_sockets{"))
            .count()
            >= 22
    );
}

fn ns_inode(ns: &Netns) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(ns.path()).expect("netns").ino()
}
