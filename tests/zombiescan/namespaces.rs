//! Other network namespaces: `--netns` by name, path and pid, `--all-netns`,
//! container labels, and the hint that points from a host port to the
//! namespace that holds the server.

use std::collections::BTreeMap;
use std::process::Command;

use zombiescan::render::json::{AllNamespaces, Document};

use crate::live::nonzero;
use crate::netns::{BIN, FakeContainer, Netns, ok, ok_as};

const ID: &str = "5a1e7c0ffee05a1e7c0ffee05a1e7c0ffee05a1e7c0ffee05a1e7c0ffee0ab12";

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Namespace A: a server on `pa`, 4 connections held, 2 closed by the
/// client. Namespace B: a server on `pb` with 2 connections. Each test uses
/// its own ports: the tests run in parallel, and `--all-netns` sees them all.
fn two_namespaces(pa: u16, pb: u16) -> (Netns, Netns, u32, u32) {
    let (pa, pb) = (pa.to_string(), pb.to_string());
    let mut a = Netns::new("nsa");
    let mut b = Netns::new("nsb");
    let a_server = a.spawn(&["listen", "--port", &pa])[0];
    a.spawn(&["connect", "--port", &pa, "--count", "4"]);
    a.spawn(&["connect", "--port", &pa, "--count", "2", "--then", "close"]);
    let b_server = b.spawn(&["listen", "--port", &pb])[0];
    b.spawn(&["connect", "--port", &pb, "--count", "2"]);
    a.wait_accepted(6);
    b.wait_accepted(2);
    a.wait_ss("A built", |out| out.lines().count() == 13);
    b.wait_ss("B built", |out| out.lines().count() == 5);
    (a, b, a_server, b_server)
}

fn scan(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run zombiescan")
}

fn json(args: &[&str]) -> Document {
    let out = scan(&[args, &["--json"]].concat());
    ok_as(&out, &format!("{args:?}"));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The document of a followed port: valid, and in two parts, the
/// backend's namespace and the one the port was asked in.
fn followed(out: &std::process::Output) -> serde_json::Value {
    ok(out);
    crate::cli::assert_valid(&out.stdout);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let parts = all["namespaces"]
        .as_array()
        .expect("one part per namespace");
    assert_eq!(parts.len(), 2, "{all:#}");
    all
}

#[test]
fn scan_another_namespace_by_name_path_and_pid() {
    live!();
    let (a, b, a_server, b_server) = two_namespaces(8000, 9000);
    let want_a = counts(&[
        ("ESTABLISHED", 8),
        ("CLOSE_WAIT", 2),
        ("FIN_WAIT2", 2),
        ("LISTEN", 1),
    ]);
    let a_pid = a_server.to_string();
    let a_path = a.path();
    for arg in [a.name.as_str(), a_path.as_str(), a_pid.as_str()] {
        for source in ["netlink", "proc"] {
            let doc = json(&["--netns", arg, "--source", source]);
            assert_eq!(
                nonzero(&doc.summary.by_state),
                want_a,
                "--netns {arg} --source {source}"
            );
            assert_eq!(doc.netns.name.as_deref(), Some(a.name.as_str()), "{arg}");
            assert!(!doc.netns.own);
            assert!(
                doc.processes
                    .iter()
                    .any(|p| p.pid == a_server && p.by_state.listen == 1)
            );
            assert!(
                doc.processes.iter().all(|p| p.pid != b_server),
                "B's server holds nothing in A"
            );
            // Host counters of A, not of zombiescan's namespace.
            assert_eq!(doc.host.sockstat["TCP"]["inuse"], 11, "{arg} {source}");
        }
    }
    // Its findings say which namespace they are from.
    let doc = json(&["--netns", &a.name, "--stall", "0s"]);
    let cw = doc
        .findings
        .iter()
        .find(|f| f.kind == "close_wait")
        .expect("close_wait in A");
    assert!(
        cw.evidence["netns"]
            .as_str()
            .is_some_and(|l| l.contains(&a.name)),
        "{:?}",
        cw.evidence
    );
    let doc = json(&["--netns", &b.name]);
    assert_eq!(
        nonzero(&doc.summary.by_state),
        counts(&[("ESTABLISHED", 4), ("LISTEN", 1)])
    );
    assert!(doc.processes.iter().any(|p| p.pid == b_server));
    // Table output names the namespace.
    let out = scan(&["--netns", &a.name]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("ip netns {}", a.name)));

    let out = scan(&["--netns", "zs-no-such-namespace"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/run/netns/zs-no-such-namespace") && err.contains("not found"),
        "{err}"
    );

    let out = crate::netns::as_nobody()
        .args([BIN, "--netns", &a.name])
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("run as root"), "{err}");

    // Not a namespace at all: said so, not "run as root".
    let out = scan(&["--netns", "/tmp"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a network namespace") && !err.contains("root"),
        "{err}"
    );
    // A pid nobody may look at: permission denied, not "not found".
    let out = crate::netns::as_nobody()
        .args([BIN, "--netns", &a_server.to_string()])
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && !err.contains("not found"),
        "{err}"
    );
}

#[test]
fn all_netns_labels_each_namespace_and_counts_each_socket_once() {
    live!();
    let (a, b, a_server, b_server) = two_namespaces(8100, 9100);
    let container = FakeContainer::new(ID);
    match &container {
        Some(c) => c.add(b_server),
        None => eprintln!("!!! no writable cgroup hierarchy: the container label is not checked"),
    }
    let out = scan(&["--all-netns", "--json"]);
    ok(&out);
    crate::cli::assert_valid(&out.stdout);
    let all: AllNamespaces = serde_json::from_slice(&out.stdout).expect("json");
    let of = |name: &str| -> Vec<&Document> {
        all.namespaces
            .iter()
            .filter(|d| d.netns.name.as_deref() == Some(name))
            .collect()
    };
    let (da, db) = (of(&a.name), of(&b.name));
    assert_eq!((da.len(), db.len()), (1, 1), "each namespace once");
    assert_eq!(da[0].summary.total, 13);
    assert_eq!(db[0].summary.total, 5);
    assert!(da[0].processes.iter().any(|p| p.pid == a_server));
    assert!(db[0].processes.iter().any(|p| p.pid == b_server));
    assert_eq!(all.namespaces.iter().filter(|d| d.netns.own).count(), 1);
    let inodes: std::collections::BTreeSet<_> =
        all.namespaces.iter().map(|d| d.netns.inode).collect();
    assert_eq!(inodes.len(), all.namespaces.len(), "no namespace twice");
    // Every socket on 8100 or 9100 is in its own namespace's part only.
    for d in &all.namespaces {
        let ours = d
            .ports
            .iter()
            .filter(|p| p.port == 8100 || p.port == 9100)
            .map(|p| p.total)
            .sum::<u32>();
        let want = match d.netns.name.as_deref() {
            Some(n) if n == a.name => 13,
            Some(n) if n == b.name => 5,
            _ => 0,
        };
        assert_eq!(ours, want, "{:?}", d.netns);
    }
    if container.is_some() {
        let c = db[0]
            .netns
            .container
            .as_ref()
            .expect("B runs in a container");
        assert_eq!(
            (c.runtime.as_str(), c.id.as_str(), c.short_id.as_str()),
            ("docker", ID, &ID[..12])
        );
        assert!(da[0].netns.container.is_none());
        let table = String::from_utf8_lossy(&scan(&["--all-netns"]).stdout).into_owned();
        assert!(table.contains(&format!("docker {}", &ID[..12])), "{table}");
    }
}

#[test]
fn a_host_port_scan_points_to_the_namespace_that_holds_the_server() {
    live!();
    let mut host = Netns::new("nsh");
    let mut backend = Netns::new("nsc");
    // A process named docker-proxy forwarding host port 30020 to 8000.
    let dir = std::env::temp_dir().join(format!("zombiescan-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let proxy = crate::netns::python_as(&dir, "docker-proxy");
    // The container's address: the backend's own, on a veth pair.
    host.veth_to(&backend, "10.231.9.1", "10.231.9.2");
    let proxy_pid = host.spawn_as(
        proxy.to_str().expect("path"),
        &[
            "listen",
            "--port",
            "30020",
            "-host-port",
            "30020",
            "-container-ip",
            "10.231.9.2",
            "-container-port",
            "38123",
        ],
    )[0];
    let server = backend.spawn(&["listen", "--host", "10.231.9.2", "--port", "38123"])[0];
    // --no-follow: where it is served, and the command that scans it.
    let out = host.exec(&[BIN, "--port", "30020", "--no-follow", "--json"]);
    ok(&out);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    let hints = doc.hints.join("\n");
    assert!(
        hints.contains(&format!("docker-proxy (pid {proxy_pid})")),
        "{hints}"
    );
    assert!(
        hints.contains(&format!(
            "(accept queue empty): zombiescan --netns {} --port 38123",
            backend.name
        )),
        "{hints}"
    );
    // By default the port is followed: the backend's part first, labelled,
    // then the forwarder's, which says where the port went.
    let out = host.exec(&[BIN, "--port", "30020", "--json"]);
    let _ = std::fs::remove_dir_all(&dir);
    let all = followed(&out);
    let parts = all["namespaces"]
        .as_array()
        .expect("one part per namespace");
    assert_eq!(parts[0]["netns"]["name"], backend.name.as_str());
    assert_eq!(parts[0]["filter"]["ports"], serde_json::json!([38123]));
    assert_eq!(parts[0]["processes"][0]["pid"], server);
    assert_eq!(parts[1]["netns"]["name"], host.name.as_str());
    let hint = parts[1]["hints"][0].as_str().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "forwarded by docker-proxy (pid {proxy_pid}) to 10.231.9.2:38123"
        )) && hint.contains(&format!("ip netns {}", backend.name)),
        "{hint}"
    );
    // Where a real server listens, there is nothing to point at.
    let out = backend.exec(&[BIN, "--port", "38123", "--json"]);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc.hints.is_empty(), "{:?}", doc.hints);
}

/// A client namespace whose connections sit in FIN_WAIT2 and a server
/// namespace that holds their other ends in CLOSE_WAIT, both in one
/// `--all-netns` run: the client's finding names the server's namespace,
/// how many and who, instead of "run zombiescan where it runs".
#[test]
fn all_netns_links_a_fin_wait2_to_its_close_wait_in_another_namespace() {
    live!();
    let mut client = Netns::new("nsfw");
    let mut server = Netns::new("nscw");
    client.veth_to(&server, "10.231.3.1", "10.231.3.2");
    let srv = server.spawn(&["listen", "--host", "10.231.3.2", "--port", "30020"]);
    client.spawn(&[
        "connect",
        "--host",
        "10.231.3.2",
        "--port",
        "30020",
        "--count",
        "3",
        "--then",
        "close",
    ]);
    server.wait_accepted(3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let fin = loop {
        let out = scan(&["--all-netns", "--json", "--stall", "1s"]);
        ok(&out);
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let of = |name: &str| {
            all["namespaces"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["netns"]["name"] == name))
                .cloned()
                .expect("the namespace is in the run")
        };
        let fin = of(&client.name)["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["kind"] == "fin_wait2"))
            .cloned();
        let cw = of(&server.name)["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["kind"] == "close_wait"));
        if let Some(f) = fin.filter(|f| cw && f["evidence"].get("peer_close_wait").is_some()) {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no linked fin_wait2 in {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // ss in the server's namespace is the truth for the count.
    let held = server
        .ss(&["-tnH", "state", "close-wait", "sport", "= :30020"])
        .lines()
        .count();
    assert_eq!(fin["evidence"]["peer_close_wait"], held);
    let explanation = fin["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.contains(&format!("ip netns {}", server.name))
            && explanation.contains(&format!("pid {}", srv[0])),
        "{explanation}"
    );
    let remediation = fin["remediation"].as_str().unwrap_or_default();
    assert!(
        !remediation.contains("run zombiescan where it runs")
            && remediation.contains("10.231.3.2:30020"),
        "{remediation}"
    );
}

#[test]
fn a_client_port_gets_no_hint() {
    live!();
    // Outbound connections to a port nothing here listens on (a database's,
    // in life): the report is about them, not about a missing server.
    let mut client = Netns::new("nscl");
    let mut server = Netns::new("nssv");
    client.veth_to(&server, "10.231.2.1", "10.231.2.2");
    server.spawn(&["listen", "--host", "10.231.2.2", "--port", "5432"]);
    client.spawn(&[
        "connect",
        "--host",
        "10.231.2.2",
        "--port",
        "5432",
        "--count",
        "2",
    ]);
    server.wait_accepted(2);
    let out = client.exec(&[BIN, "--port", "5432", "--json"]);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc.summary.total, 2);
    assert!(doc.hints.is_empty(), "{:?}", doc.hints);
}

#[test]
fn a_port_nothing_here_listens_on_is_followed_where_one_namespace_serves_it() {
    live!();
    // NAT rules leave no socket where the port is published: the scan finds
    // nothing on it, and one namespace (this test's own, on a port no other
    // test uses) listens on it.
    let front = Netns::new("natf");
    let mut back = Netns::new("natb");
    let server = back.spawn(&["listen", "--port", "38777"])[0];
    let out = front.exec(&[BIN, "--port", "38777", "--json"]);
    let all = followed(&out);
    let parts = all["namespaces"]
        .as_array()
        .expect("one part per namespace");
    assert_eq!(parts[0]["netns"]["name"], back.name.as_str());
    assert_eq!(parts[0]["processes"][0]["pid"], server);
    let hint = parts[1]["hints"][0].as_str().unwrap_or_default();
    assert!(
        hint.starts_with(
            "nothing listens on port 38777 here: the one listener on it is 127.0.0.1:38777"
        ) && hint.contains("NAT rules"),
        "{hint}"
    );
    // With a second namespace serving it, which one NAT picks is a guess:
    // hints, not a followed part.
    let mut other = Netns::new("natc");
    other.spawn(&["listen", "--port", "38777"]);
    let out = front.exec(&[BIN, "--port", "38777", "--json"]);
    let doc: Document = serde_json::from_slice(&out.stdout).expect("one document");
    let hints = doc.hints.join("\n");
    assert!(
        hints.contains(&back.name) && hints.contains(&other.name),
        "{hints}"
    );
}
