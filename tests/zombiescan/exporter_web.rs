//! The exporter where a network can reach it: `serve --listen 0.0.0.0:…`
//! in a namespace of the test's own, with a `--web-config` in
//! exporter-toolkit's format (TLS with a certificate openssl makes here,
//! basic authentication with a bcrypt hash), scraped with curl and by a
//! real Prometheus, and held by 2,000 clients that send half a request.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{BIN, Netns, ok_as};

const PORT: u16 = 10130;
const PASSWORD: &str = "correct horse";

/// A directory of the test's own, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("zs-web-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        Dir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn show(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// openssl in `dir`, which must succeed.
fn openssl(dir: &Dir, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(&dir.0)
        .output()
        .expect("openssl");
    ok_as(&out, &format!("openssl {args:?}"));
}

/// openssl req's arguments for a new P-256 key, unencrypted.
const NEW_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A P-256 key NAME.key and a signing request NAME.csr for `subject`.
fn request(dir: &Dir, name: &str, subject: &str) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let files = ["-keyout", &key, "-out", &csr, "-subj", subject];
    openssl(dir, &[&["req"][..], &NEW_KEY, &files].concat());
}

/// NAME.pem: NAME.csr signed by the CA, with the extensions `ext` (one
/// line of an openssl extension file).
fn sign(dir: &Dir, name: &str, ext: &str) {
    let cnf = format!("{name}.cnf");
    std::fs::write(dir.path(&cnf), format!("{ext}\n")).expect("extensions");
    let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &cnf,
        ],
    );
}

/// A self-signed certificate NAME.pem and its key NAME.key, with `extra`
/// arguments (extensions).
fn self_signed(dir: &Dir, name: &str, subject: &str, extra: &[&str]) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let files = [
        "-keyout", &key, "-out", &pem, "-days", "2", "-subj", subject,
    ];
    openssl(
        dir,
        &[&["req", "-x509"][..], &NEW_KEY, &files, extra].concat(),
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it (ca.pem,
/// server.pem, server.key), made by openssl.
fn certificates(dir: &Dir) {
    self_signed(dir, "ca", "/CN=zombiescan test CA", &[]);
    request(dir, "server", "/CN=127.0.0.1");
    sign(dir, "server", "subjectAltName=IP:127.0.0.1");
}

/// A client certificate signed by the same CA (client.pem, client.key),
/// and one that signed itself (rogue.pem, rogue.key).
fn client_certificate(dir: &Dir) {
    request(dir, "client", "/CN=prometheus");
    sign(dir, "client", "extendedKeyUsage=clientAuth");
    let leaf = ["-addext", "extendedKeyUsage=clientAuth"];
    let not_ca = ["-addext", "basicConstraints=critical,CA:FALSE"];
    self_signed(dir, "rogue", "/CN=rogue", &[&leaf[..], &not_ca].concat());
}

/// web.yml with the certificate (paths relative to the file, as
/// exporter-toolkit reads them) and one user, `prometheus`, whose
/// password is `password`.
fn web_config(dir: &Dir, password: &str) {
    // Cost 6 keeps the debug build quick; a real file has 10 or more.
    let hash = bcrypt::hash(password, 6).expect("bcrypt");
    std::fs::write(
        dir.path("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .expect("web.yml");
}

/// The exporter, on 0.0.0.0 inside `ns`, serving TLS: its pid, once it
/// said where it serves.
fn start_exporter(ns: &mut Netns, dir: &Dir) -> u32 {
    let log = dir.path("exporter.log");
    let listen = format!("0.0.0.0:{PORT}");
    let web = dir.show("web.yml");
    let pid = ns.start(
        &[BIN, "serve", "--listen", &listen, "--web-config", &web],
        &[],
        &log,
    );
    wait_logged(dir, "the exporter serving", |l| {
        l.contains(&format!("serving https://0.0.0.0:{PORT}/metrics"))
    });
    pid
}

fn wait_logged(dir: &Dir, what: &str, wanted: impl Fn(&str) -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(dir.path("exporter.log")).unwrap_or_default();
        if log.lines().any(&wanted) {
            return;
        }
        assert!(Instant::now() < until, "no line with {what}:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the exporter's log has `needle` on `times` lines.
fn wait_logged_times(dir: &Dir, needle: &str, times: usize) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(dir.path("exporter.log")).unwrap_or_default();
        if log.lines().filter(|l| l.contains(needle)).count() >= times {
            return;
        }
        assert!(Instant::now() < until, "{needle} not {times} times:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// curl inside `ns`: the HTTP status (0: no HTTP answer), the body.
fn curl(ns: &Netns, dir: &Dir, url: &str, user: Option<&str>) -> (u16, String) {
    let ca = dir.show("ca.pem");
    let mut args = vec!["curl", "-s", "--max-time", "20", "--cacert", &ca];
    args.extend(["-w", "\n%{http_code}", url]);
    if let Some(u) = user {
        args.extend(["-u", u]);
    }
    let out = ns.run(&args, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn status_line(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

/// Only TLS, only with the right password: 401 without credentials or with
/// a wrong password, no HTTP answer in plain HTTP on the TLS port, the
/// metrics with the password; SIGHUP reads a new password, and a file that
/// no longer reads leaves the one before. A bad file at the start is one
/// line and exit 3.
#[test]
fn the_exporter_answers_only_tls_with_the_right_password() {
    live!();
    let dir = Dir::new("tls");
    certificates(&dir);
    web_config(&dir, PASSWORD);
    let mut ns = Netns::new("tls");
    let pid = start_exporter(&mut ns, &dir);
    let url = format!("https://127.0.0.1:{PORT}/metrics");
    assert_eq!(curl(&ns, &dir, &url, None).0, 401);
    assert_eq!(curl(&ns, &dir, &url, Some("prometheus:wrong")).0, 401);
    assert_eq!(curl(&ns, &dir, &url, Some("nobody:wrong")).0, 401);
    let right = format!("prometheus:{PASSWORD}");
    let (code, body) = curl(&ns, &dir, &url, Some(&right));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("zombiescan_build_info"), "{body}");
    // The configured header, on every answer.
    let ca = dir.show("ca.pem");
    let head = ns.run(&["curl", "-sI", "--cacert", &ca, "-u", &right, &url], &[]);
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    // Plain HTTP on the TLS port: no HTTP answer.
    let plain = format!("http://127.0.0.1:{PORT}/metrics");
    let (code, body) = curl(&ns, &dir, &plain, Some(&right));
    assert_eq!(code, 0, "plain HTTP was answered: {body}");

    // A new password, read on SIGHUP.
    web_config(&dir, "battery staple");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    wait_logged(&dir, "the file read again", |l| l.contains("web.yml again"));
    assert_eq!(curl(&ns, &dir, &url, Some(&right)).0, 401);
    assert_eq!(
        curl(&ns, &dir, &url, Some("prometheus:battery staple")).0,
        200
    );
    // A file that no longer reads: the configuration before stays.
    std::fs::write(dir.path("web.yml"), "basic_auth_users: [\n").expect("break");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    wait_logged(&dir, "the bad file refused", |l| l.contains("unchanged"));
    assert_eq!(
        curl(&ns, &dir, &url, Some("prometheus:battery staple")).0,
        200
    );

    // Client certificates: with RequireAndVerifyClientCert, a client
    // without one, or with one its CA did not sign, gets no answer.
    client_certificate(&dir);
    std::fs::write(
        dir.path("web.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
         \x20 client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
    )
    .expect("web.yml");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    wait_logged_times(&dir, "web.yml again", 2);
    let with_cert = |cert: &str, key: &str| {
        let (cert, key) = (dir.show(cert), dir.show(key));
        let out = ns.run(
            &[
                "curl",
                "-s",
                "--max-time",
                "20",
                "--cacert",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ],
            &[],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u16>()
            .unwrap_or(0)
    };
    assert_eq!(curl(&ns, &dir, &url, None).0, 0, "no client certificate");
    assert_eq!(with_cert("client.pem", "client.key"), 200);
    assert_eq!(
        with_cert("rogue.pem", "rogue.key"),
        0,
        "a certificate of no CA"
    );

    // At the start, a bad file is one line and exit 3.
    let bad = dir.path("bad.yml");
    std::fs::write(&bad, "basic_auth_users:\n  prometheus: not-a-hash\n").expect("bad");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--web-config"])
        .arg(&bad)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with a bad web config");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("serve");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--web-config")
            && err.contains("bad.yml")
            && err.contains("not a bcrypt hash"),
        "{err}"
    );
}

/// 2,000 clients send half a request each and wait, while the exporter
/// (on 0.0.0.0, TLS and basic authentication) is scraped by curl and by a
/// real Prometheus: at most 64 threads and 64 MiB, the scrape answered in
/// under 2 s, Prometheus's `up` 1 with the right password and 0 with a
/// wrong one, and every half-sent request closed by the timeout (counted
/// from ss).
#[test]
fn slow_clients_hold_no_thread_and_prometheus_scrapes_over_tls() {
    live!();
    if !crate::serve::prometheus_or_skip(
        "slow_clients_hold_no_thread_and_prometheus_scrapes_over_tls",
    ) {
        return;
    }
    let dir = Dir::new("slow");
    certificates(&dir);
    web_config(&dir, PASSWORD);
    let mut ns = Netns::new("slow");
    let pid = start_exporter(&mut ns, &dir);

    let script = format!(
        "{}/tests/support/slow_clients.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let slow_log = dir.path("slow.log");
    let port = PORT.to_string();
    let ca = dir.show("ca.pem");
    ns.start(
        &["python3", &script, "127.0.0.1", &port, "2000", &ca],
        &[],
        &slow_log,
    );
    // The connections the exporter holds, as the kernel has them (those
    // still in the listener's accept queue have no owner yet), sampled
    // while they come.
    let owner = format!("pid={pid},");
    let held = |ns: &Netns| {
        let sport = format!("( sport = :{PORT} )");
        let out = ns.ss(&["-tnpH", "state", "established", &sport]);
        out.lines().filter(|l| l.contains(&owner)).count()
    };
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&slow_log)
        .unwrap_or_default()
        .contains("connected 2000")
    {
        most = most.max(held(&ns));
        let log = std::fs::read_to_string(&slow_log).unwrap_or_default();
        assert!(Instant::now() < until, "the slow clients: {log}");
    }
    most = most.max(held(&ns));
    assert!((1..=64).contains(&most), "{most} connections held at most");

    let url = format!("https://127.0.0.1:{PORT}/metrics");
    let right = format!("prometheus:{PASSWORD}");
    let started = Instant::now();
    let (code, body) = curl(&ns, &dir, &url, Some(&right));
    let took = started.elapsed();
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_secs(2), "the scrape took {took:?}");
    let threads = status_line(pid, "Threads:");
    let rss_kib = status_line(pid, "VmHWM:");
    eprintln!(
        "2,000 slow clients: at most {most} held, {threads} threads, peak RSS {:.1} MiB, a scrape in {took:?}",
        rss_kib as f64 / 1024.0
    );
    assert!(threads <= 64, "{threads} threads");
    assert!(rss_kib <= 64 << 10, "{} MiB", rss_kib >> 10);

    // A real Prometheus, two jobs: the right password and a wrong one.
    let prom = dir.path("prometheus.yml");
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n\
             \x20   basic_auth:\n      username: prometheus\n      password: '{password}'\n\
             \x20   static_configs:\n      - targets: ['127.0.0.1:{PORT}']\n",
            dir.show("ca.pem")
        )
    };
    std::fs::write(
        &prom,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
            job("right", PASSWORD),
            job("wrong", "guess")
        ),
    )
    .expect("prometheus.yml");
    std::fs::create_dir_all(dir.path("data")).expect("data");
    let config = format!("--config.file={}", prom.display());
    let data = format!("--storage.tsdb.path={}", dir.show("data"));
    ns.start(
        &[
            "prometheus",
            &config,
            &data,
            "--web.listen-address=127.0.0.1:9090",
        ],
        &[],
        &dir.path("prometheus.log"),
    );
    let up = |job: &str| -> Option<f64> {
        let q = format!("http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22{job}%22%7D");
        let out = ns.run(&["curl", "-s", "--max-time", "5", &q], &[]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (right, wrong) = (up("right"), up("wrong"));
        if right == Some(1.0) && wrong == Some(0.0) {
            break;
        }
        let log = std::fs::read_to_string(dir.path("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < until,
            "up: right {right:?}, wrong {wrong:?}\nprometheus log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Every half-sent request is closed by the timeout: none held, and
    // the clients saw each of theirs closed.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let slow = std::fs::read_to_string(&slow_log).unwrap_or_default();
        let stuck = held(&ns);
        if slow.contains("closed 2000") && stuck <= 2 {
            break;
        }
        assert!(
            Instant::now() < until,
            "still held: {stuck}; clients: {}",
            slow.lines().last().unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let threads = status_line(pid, "Threads:");
    assert!(threads <= 64, "{threads} threads");
}
