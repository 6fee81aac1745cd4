//! `zombiescan serve`, the exporter, over real HTTP on the host's loopback,
//! scanning a live test namespace (`--netns`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::fixtures::assert_exposition;
use crate::netns::{BIN, Netns, live_or_skip, ok, ss_counts};

/// A running `zombiescan serve`, killed when dropped.
struct Exporter {
    child: Child,
    addr: String,
    /// Its stderr lines (a Mutex: scrapes share the exporter across threads).
    log: std::sync::Mutex<Receiver<String>>,
}

impl Exporter {
    /// Starts it on a free loopback port with `args` and waits for the line
    /// that says where it serves.
    fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zombiescan serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let Ok(line) = log.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zombiescan serve said nothing");
        };
        // "serving http://127.0.0.1:PORT/metrics (at most 64 connections)"
        let Some((addr, _)) = line
            .strip_prefix("zombiescan serve: serving ")
            .and_then(|r| r.split_once("://"))
            .and_then(|(_, r)| r.split_once("/metrics "))
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("first line: {line}");
        };
        let addr = addr.to_string();
        Exporter {
            child,
            addr,
            log: std::sync::Mutex::new(log),
        }
    }

    /// One HTTP/1.0 request: its status, headers and body.
    fn request(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
        http(&self.addr, method, path, headers)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.request("GET", path, &[]);
        (status, body)
    }

    /// Scrapes until `ready` holds (a scan after the sockets settled).
    fn scrape_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get("/metrics");
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(Instant::now() < until, "no scrape with {what}:\n{body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a logged line that `wanted` accepts (the reader thread
    /// passes them on when it gets to them).
    fn wait_logged(&self, what: &str, wanted: impl Fn(&str) -> bool) {
        let log = self.log.lock().expect("log");
        let until = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if wanted(&line) => return,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line logged with {what}: {seen:?}"),
            }
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request to `addr` (on loopback): status, head, body.
fn http(addr: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (status, head.to_string(), body.to_string())
}

/// The value of the one series of `name` whose labels contain all of
/// `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    let series = assert_exposition(text);
    let hits: Vec<f64> = series
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .filter(|(k, _)| labels.iter().all(|l| k.contains(l)))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?}:\n{text}");
    hits[0]
}

#[test]
fn the_exporter_serves_a_live_namespace() {
    live!();
    let mut ns = Netns::new("serve");
    ns.close_wait_leak(3, 2);
    let exporter = Exporter::start(&["--netns", ns.name(), "--port", "30020", "--stall", "0s"]);

    let text = exporter.scrape_until("close_wait at warning", |t| {
        t.contains("zombiescan_finding_severity{netns_name=")
            && value(t, "zombiescan_finding_severity", &["kind=\"close_wait\""]) == 2.0
    });
    let netns = format!("netns_name=\"{}\"", ns.name());
    for (state, n) in ss_counts(&ns.ss(&["-tanH"])) {
        assert_eq!(
            value(
                &text,
                "zombiescan_sockets",
                &[&netns, &format!("state=\"{state}\"")]
            ),
            f64::from(n),
            "{state}"
        );
    }
    assert_eq!(
        value(
            &text,
            "zombiescan_process_sockets",
            &["comm=\"python3\"", "state=\"CLOSE_WAIT\""]
        ),
        3.0
    );
    let oldest = value(
        &text,
        "zombiescan_finding_oldest_seconds",
        &[
            "kind=\"close_wait\"",
            "direction=\"inbound\"",
            "port=\"30020\"",
        ],
    );
    assert!(oldest >= 0.0);
    assert_eq!(value(&text, "zombiescan_scrape_error", &[]), 0.0);
    assert!(value(&text, "zombiescan_scans_total", &[]) >= 1.0);

    let (status, head, _) = exporter.request("GET", "/metrics", &[]);
    assert_eq!(status, 200);
    // Header names are case-insensitive (hyper writes them in lower case).
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (status, page) = exporter.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/metrics\""), "{page}");
    assert_eq!(exporter.get("/metrics/x").0, 404);
    assert_eq!(exporter.get("/favicon.ico").0, 404);
    assert_eq!(exporter.request("POST", "/metrics", &[]).0, 405);
    let (status, _, body) = exporter.request("HEAD", "/metrics", &[]);
    assert_eq!((status, body.as_str()), (200, ""));

    // Scrapes at once: each gets a whole exposition.
    std::thread::scope(|s| {
        let all: Vec<_> = (0..8)
            .map(|_| s.spawn(|| exporter.get("/metrics")))
            .collect();
        for t in all {
            let (status, body) = t.join().expect("scrape");
            assert_eq!(status, 200);
            assert_eq!(value(&body, "zombiescan_scrape_error", &[]), 0.0);
            assert!(body.contains("zombiescan_sockets{"));
        }
    });

    // Prometheus allows less time than the scan takes: the last complete
    // scan, and its age (made older than a second first).
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, body) = exporter.request(
        "GET",
        "/metrics",
        &["X-Prometheus-Scrape-Timeout-Seconds: 0.000001"],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("zombiescan_sockets{"), "{body}");
    assert!(
        value(&body, "zombiescan_scan_age_seconds", &[]) >= 1.0,
        "{body}"
    );

    // --all-netns: every namespace, this one among them by its name.
    let all = Exporter::start(&["--all-netns", "--stall", "0s"]);
    let text = all.scrape_until("the test's namespace", |t| {
        t.contains(&format!(
            "zombiescan_sockets{{{netns},container=\"\",state=\"CLOSE_WAIT\"}} 3"
        ))
    });
    assert!(
        text.contains("zombiescan_sockets{netns_name=\"\",container=\"\",state="),
        "own namespace"
    );
    drop(all);

    // SIGTERM: a clean stop.
    let mut exporter = exporter;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exporter.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = exporter.child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < until, "still serving after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    exporter.wait_logged("stopped", |l| l.ends_with("stopped"));
}

/// A port already taken: one line saying so, exit 3, no exporter.
#[test]
fn a_taken_port_is_one_line_and_exit_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("zombiescan: serve: cannot listen on {addr}: ")),
        "{err}"
    );
    assert!(err.contains("--listen ADDR:PORT"), "{err}");
}

/// A scan that cannot be made (its namespace deleted under it) is
/// `zombiescan_scrape_error 1` and a log line; the exporter serves on.
#[test]
fn a_failed_scan_is_a_scrape_error_and_the_exporter_serves_on() {
    live!();
    let ns = Netns::new("gone");
    let exporter = Exporter::start(&["--netns", ns.name()]);
    let text = exporter.scrape_until("a scan", |t| t.contains("zombiescan_sockets{"));
    assert_eq!(value(&text, "zombiescan_scrape_error", &[]), 0.0);
    // Deleted with nothing in it: Drop's second delete is a no-op.
    let out = Command::new("ip")
        .args(["netns", "del", ns.name()])
        .output()
        .expect("ip");
    ok(&out);
    let text = exporter.scrape_until("the error", |t| {
        value(t, "zombiescan_scrape_error", &[]) == 1.0
    });
    assert!(!text.contains("zombiescan_sockets{"), "{text}");
    assert!(value(&text, "zombiescan_scan_errors_total", &[]) >= 1.0);
    exporter.wait_logged("scan failed", |l| {
        l.contains("scan failed") && l.contains(ns.name())
    });
    // Still there, still answering.
    assert_eq!(exporter.get("/").0, 200);
}

/// Whether promtool and prometheus are there (Debian's `prometheus`
/// package; `.ci/run` installs it): in CI their absence is a failure.
pub fn prometheus_or_skip(test: &str) -> bool {
    let have = |b: &str| Command::new(b).arg("--version").output().is_ok();
    if have("promtool") && have("prometheus") {
        return true;
    }
    crate::netns::skip(
        test,
        "needs promtool and prometheus (bash .ci/run installs Debian's prometheus)",
    );
    false
}

fn contrib(file: &str) -> String {
    format!("{}/contrib/prometheus/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The rules of contrib/prometheus load, and their unit tests pass.
#[test]
fn the_alerting_rules_check_and_pass_their_tests() {
    if !prometheus_or_skip("the_alerting_rules_check_and_pass_their_tests") {
        return;
    }
    for args in [
        ["check", "rules", &contrib("zombiescan.rules.yml")],
        ["test", "rules", &contrib("zombiescan.rules.test.yml")],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Prometheus server of the test's own, killed and its data removed when
/// dropped.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    addr: String,
}

impl Prometheus {
    /// Scrapes `target` every second and evaluates the project's rules every
    /// second, listening on a free loopback port.
    fn start(target: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("zs-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: zombiescan\n    static_configs:\n      - targets: [\"{target}\"]\n",
            contrib("zombiescan.rules.yml")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        // A free port: the kernel's choice, released for Prometheus to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus");
        Prometheus { child, dir, addr }
    }

    /// GET `path` of its HTTP API, parsed; None until it answers.
    fn api(&mut self, path: &str) -> Option<serde_json::Value> {
        if let Some(st) = self.child.try_wait().expect("wait") {
            panic!("prometheus exited ({st}):\n{}", self.log());
        }
        TcpStream::connect(&self.addr).ok()?;
        let (status, _, body) = http(&self.addr, "GET", path, &[]);
        (status == 200).then(|| serde_json::from_str(&body).expect("json"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real Prometheus scrapes `zombiescan serve` on a namespace with a
/// CLOSE_WAIT leak: the series reads 2 (warning) in its API and the
/// rule's alert is pending (its `for` is 5 minutes) or firing.
#[test]
fn a_real_prometheus_scrapes_the_exporter_and_the_alert_fires() {
    let test = "a_real_prometheus_scrapes_the_exporter_and_the_alert_fires";
    if !live_or_skip(test) || !prometheus_or_skip(test) {
        return;
    }
    let mut ns = Netns::new("prom");
    ns.close_wait_leak(3, 0);
    let exporter = Exporter::start(&["--netns", ns.name(), "--stall", "0s"]);
    let mut prom = Prometheus::start(&exporter.addr);
    let query = "/api/v1/query?query=zombiescan_finding_severity%7Bkind%3D%22close_wait%22%7D";
    let until = Instant::now() + Duration::from_secs(120);
    let (mut severity, mut alert) = (None, None);
    while severity != Some(2.0) || alert.is_none() {
        assert!(
            Instant::now() < until,
            "severity {severity:?}, alert {alert:?}\nprometheus log:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(250));
        if let Some(doc) = prom.api(query) {
            severity = doc["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok());
        }
        if let Some(doc) = prom.api("/api/v1/alerts") {
            alert = doc["data"]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| {
                    a["labels"]["alertname"] == "ZombiescanFinding"
                        && a["labels"]["kind"] == "close_wait"
                        && a["labels"]["netns_name"] == ns.name()
                })
                .map(|a| a["state"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(
        matches!(alert.as_deref(), Some("pending" | "firing")),
        "{alert:?}"
    );
    // And Prometheus saw the exporter healthy.
    let up = prom.api("/api/v1/query?query=up").expect("up");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    // Every query of the Grafana dashboard runs; the leak is on its
    // CLOSE_WAIT panel.
    for q in dashboard_queries() {
        let doc = prom
            .api(&format!("/api/v1/query?query={}", encode_query(&q)))
            .unwrap_or_else(|| panic!("{q}: refused"));
        assert_eq!(doc["status"], "success", "{q}: {doc}");
        if q.contains("CLOSE_WAIT") {
            assert_eq!(doc["data"]["result"][0]["value"][1], "3", "{q}: {doc}");
        }
    }
}

/// The metric names the rules and the dashboard use.
fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("zombiescan_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every series the alerting rules and the Grafana dashboard name is one
/// zombiescan writes (the golden exposition, this host's, the exporter's
/// own).
#[test]
fn the_rules_and_dashboard_name_only_series_zombiescan_writes() {
    let golden = std::fs::read_to_string(format!(
        "{}/fixtures/golden/report.prom",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("golden");
    let host = Command::new(BIN)
        .args(["--format", "prometheus"])
        .output()
        .expect("run");
    ok(&host);
    let host = String::from_utf8(host.stdout).expect("utf-8");
    let ours = zombiescan::render::prometheus::encode_scrape(&Default::default());
    let written: std::collections::BTreeSet<String> = [golden, host, ours]
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    for file in [
        contrib("zombiescan.rules.yml"),
        contrib("zombiescan.rules.test.yml"),
        format!(
            "{}/contrib/grafana/zombiescan.json",
            env!("CARGO_MANIFEST_DIR")
        ),
    ] {
        let text = std::fs::read_to_string(&file).expect("read");
        let used = names_in(&text);
        assert!(!used.is_empty(), "{file}");
        let unknown: Vec<&String> = used.difference(&written).collect();
        assert!(unknown.is_empty(), "{file} names {unknown:?}, not written");
    }
}

/// The dashboard's queries, `$instance` standing for every instance.
fn dashboard_queries() -> Vec<String> {
    let path = format!(
        "{}/contrib/grafana/zombiescan.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("json");
    doc["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").replace("$instance", ".+"))
        .collect()
}

/// A query string's value, percent-encoded.
fn encode_query(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
