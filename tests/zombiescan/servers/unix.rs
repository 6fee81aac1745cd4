//! nginx in front of an upstream on a unix socket, the layout most Python
//! deployments use (`uvicorn --uds`, `gunicorn --bind unix:`): a full unix
//! backlog makes nginx's connect fail with EAGAIN and its clients get
//! 502s, and a scan of nginx's port must lead with that socket.

use super::*;
use crate::netns::BIN;

/// The listener line of `ss -xlH` for `path`: (Recv-Q, Send-Q).
fn unix_listener(ns: &Netns, path: &str) -> Option<(u32, u32)> {
    ns.ss(&["-xlH"]).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 5 && f[1] == "LISTEN" && f[4] == path)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// Waits until `path` listens.
fn wait_listening(ns: &Netns, path: &str) {
    ns.wait_ss_with(&["-xlH"], "the unix listener", |o| {
        o.lines().any(|l| l.split_whitespace().nth(4) == Some(path))
    });
}

/// Sends one request through nginx whose handler blocks the upstream, and
/// waits until the upstream has accepted it (its server end is there).
fn block_upstream(ns: &mut Netns, venv: &Path, path: &str, n: usize, tag: &str) {
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    for i in 0..n {
        ns.start(
            &[
                &py,
                &clients,
                "http://127.0.0.1:30020/block",
                "--count",
                "1",
                "--timeout",
                "900",
            ],
            &[],
            &log(&format!("{tag}-{i}")),
        );
    }
    ns.wait_ss_with(&["-xH"], "the blocking requests accepted", |o| {
        o.lines()
            .filter(|l| l.starts_with("u_str ESTAB") && l.split_whitespace().nth(4) == Some(path))
            .count()
            >= n
    });
}

/// Impatient clients through nginx: the queue fills to one past its
/// backlog, and every later connect nginx makes fails at once. Returns
/// how many got a 502.
fn fill_queue(ns: &Netns, venv: &Path, count: u32, path: &str) -> u64 {
    let out = impatient(ns, venv, "/block", count);
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("clients' JSON");
    ns.wait_ss_with(&["-xlH"], "the unix queue past its backlog", |_| {
        unix_listener(ns, path).is_some_and(|(q, b)| q > b)
    });
    line["status"]["502"].as_u64().unwrap_or(0)
}

fn nginx_to_unix(ns: &mut Netns, tag: &str, sock: &str) -> PathBuf {
    nginx(
        ns,
        tag,
        &format!(
            "  server {{\n   listen 127.0.0.1:30020;\n   location / {{\n    proxy_pass http://unix:{sock}:/;\n\
                 proxy_read_timeout 600s;\n   }}\n  }}\n"
        ),
    )
}

/// uvicorn `--uds --backlog 16` whose loop is blocked, behind nginx:
/// `zombiescan --port 30020` (nginx's port) leads with the unix socket's
/// full queue, uvicorn's pid and its flags, says how the socket was tied
/// to the port, and nginx's error log shows the EAGAIN the words explain.
#[test]
fn nginx_in_front_of_uvicorn_on_a_unix_socket_whose_loop_is_blocked() {
    let test = "nginx_in_front_of_uvicorn_on_a_unix_socket_whose_loop_is_blocked";
    let Some(venv) = venv(test) else {
        return;
    };
    if !have_nginx(test) {
        return;
    }
    let mut ns = Netns::new("uds");
    let dir = std::env::temp_dir().join(format!("zombiescan-uds-{}", std::process::id()));
    let sock = dir.join("app.sock").display().to_string();
    let dir = nginx_to_unix(&mut ns, "uds", &sock);
    let bin = venv.join("bin/uvicorn").display().to_string();
    let app = support();
    let uv = ns.start(
        &[
            &bin,
            "app:asgi",
            "--app-dir",
            &app,
            "--uds",
            &sock,
            "--backlog",
            "16",
            "--log-level",
            "warning",
        ],
        &[("BLOCK_S", "900")],
        &log("uds-uvicorn"),
    );
    wait_listening(&ns, &sock);
    block_upstream(&mut ns, &venv, &sock, 1, "uds-holder");
    let got_502 = fill_queue(&ns, &venv, 30, &sock);
    let (queue, backlog) = unix_listener(&ns, &sock).expect("ss -xl shows the listener");
    assert_eq!(backlog, 16, "ss: backlog");
    assert!(got_502 >= 1, "nginx answered no 502");
    let errors = std::fs::read_to_string(dir.join("error.log")).expect("nginx's error log");
    assert!(
        errors.contains(&format!(
            "connect() to unix:{sock} failed (11: Resource temporarily unavailable) while connecting to upstream"
        )),
        "{errors}"
    );

    let doc = ns.scan_until(&["--port", "30020"], "the unix queue", |d| {
        of_kind(d, "accept_queue_full")
            .iter()
            .any(|f| f.evidence["path"] == sock.as_str())
    });
    let f = of_kind(&doc, "accept_queue_full")
        .into_iter()
        .find(|f| f.evidence["path"] == sock.as_str())
        .expect("the unix finding");
    said(
        "nginx → uvicorn --uds --backlog 16, loop blocked, 30 clients",
        &format!("unix LISTEN Recv-Q {queue} Send-Q {backlog}"),
        f,
    );
    assert_eq!(f.severity, "critical");
    assert_eq!(f.evidence["accept_queue"], u64::from(queue));
    assert_eq!(f.evidence["backlog"], 16);
    assert_eq!(f.evidence["server"], "uvicorn");
    assert_eq!(f.evidence["behind_port"], 30020);
    assert_eq!(f.pids, vec![uv], "the queue is uvicorn's");
    assert_eq!(f.ports, vec![30020]);
    assert!(f.explanation.contains("nginx"), "{}", f.explanation);
    assert!(f.explanation.contains("EAGAIN"), "{}", f.explanation);
    assert!(
        f.remediation.contains("--backlog 16 (its command line)"),
        "{}",
        f.remediation
    );
    assert!(
        f.advice_source
            .as_deref()
            .is_some_and(|s| s.contains("unix_recvq_full")),
        "{:?}",
        f.advice_source
    );
    let p = doc.paths.iter().find(|p| p.path == sock).expect("the path");
    assert_eq!((p.queue, p.backlog), (Some(queue), Some(16)));
    assert_eq!(p.behind.len(), 1, "{:?}", p.behind);
    assert_eq!(p.behind[0].port, 30020);
    let nginx_pids: Vec<u32> = ns
        .pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nginx")
        })
        .collect();
    assert!(
        p.behind[0].pids.iter().all(|p| nginx_pids.contains(p)),
        "{:?} of nginx {nginx_pids:?}",
        p.behind[0].pids
    );

    // Scanned from outside the namespace, with --netns: the same finding.
    let out = std::process::Command::new(BIN)
        .args(["--netns", ns.name(), "--port", "30020", "--json"])
        .output()
        .expect("zombiescan --netns");
    ok(&out);
    let outside: Document = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        of_kind(&outside, "accept_queue_full")
            .iter()
            .any(|f| f.evidence["path"] == sock.as_str() && f.pids == vec![uv]),
        "{:#?}",
        outside.findings
    );

    // At 80 columns the report leads with it.
    let out = ns.exec(&["env", "COLUMNS=80", BIN, "--port", "30020"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text
        .lines()
        .find(|l| l.starts_with("CRITICAL") || l.starts_with("WARNING"))
        .unwrap_or_default();
    assert!(first.contains("accept_queue_full"), "{text}");
    assert!(text.contains(&sock), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");

    // --path scans the socket alone, as --port scans a port.
    let by_path = ns.zombiescan_json(&["--path", &sock]);
    assert!(by_path.sockets.iter().all(|s| s.family == "unix"));
    assert_eq!(of_kind(&by_path, "accept_queue_full").len(), 1);
    assert_eq!(by_path.summary.total, 0, "no TCP socket with --path alone");
    // kill cannot close unix sockets, and says so.
    let out = ns.exec(&[BIN, "kill", "--path", &sock, "--state", "ESTABLISHED"]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("SOCK_DESTROY closes TCP sockets only"),
        "{said}"
    );
    // A capture carries the unix sockets: analysed, the same finding.
    let file = dir.join("uds.zsc");
    let file_s = file.display().to_string();
    ns.zombiescan(&["capture", "-o", &file_s, "--port", "30020"]);
    let out = std::process::Command::new(BIN)
        .args(["analyze", &file_s, "--json"])
        .output()
        .expect("analyze");
    ok(&out);
    let again: Document = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        of_kind(&again, "accept_queue_full")
            .iter()
            .any(|f| f.evidence["path"] == sock.as_str()),
        "{:#?}",
        again.findings
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// gunicorn's two sync workers busy behind nginx on a unix socket: the
/// finding blames the listener's holders (the master and both workers) and
/// quotes gunicorn's own flags.
#[test]
fn nginx_in_front_of_gunicorn_on_a_unix_socket_with_its_workers_busy() {
    let test = "nginx_in_front_of_gunicorn_on_a_unix_socket_with_its_workers_busy";
    let Some(venv) = venv(test) else {
        return;
    };
    if !have_nginx(test) {
        return;
    }
    let mut ns = Netns::new("udsg");
    let dir = std::env::temp_dir().join(format!("zombiescan-udsg-{}", std::process::id()));
    let sock = dir.join("app.sock").display().to_string();
    let dir = nginx_to_unix(&mut ns, "udsg", &sock);
    let bin = venv.join("bin/gunicorn").display().to_string();
    let app = support();
    let bind = format!("unix:{sock}");
    ns.start(
        &[
            &bin,
            "--chdir",
            &app,
            "-w",
            "2",
            "--backlog",
            "8",
            "--timeout",
            "600",
            "-b",
            &bind,
            "app:wsgi",
        ],
        &[("BLOCK_S", "900")],
        &log("udsg-gunicorn"),
    );
    wait_listening(&ns, &sock);
    block_upstream(&mut ns, &venv, &sock, 2, "udsg-holder");
    let gunicorn: Vec<u32> = ns
        .pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("gunicorn"))
        })
        .collect();
    fill_queue(&ns, &venv, 20, &sock);
    let (queue, backlog) = unix_listener(&ns, &sock).expect("ss -xl shows the listener");
    let doc = ns.scan_until(&["--port", "30020"], "the unix queue", |d| {
        of_kind(d, "accept_queue_full")
            .iter()
            .any(|f| f.evidence["path"] == sock.as_str())
    });
    let f = of_kind(&doc, "accept_queue_full")
        .into_iter()
        .find(|f| f.evidence["path"] == sock.as_str())
        .expect("the unix finding");
    said(
        "nginx → gunicorn -w 2 --backlog 8 on unix:, workers busy, 20 clients",
        &format!("unix LISTEN Recv-Q {queue} Send-Q {backlog}"),
        f,
    );
    assert_eq!(f.evidence["server"], "gunicorn");
    assert_eq!(f.evidence["backlog"], u64::from(backlog));
    assert!(
        f.pids.len() >= 3,
        "the master and both workers: {:?}",
        f.pids
    );
    assert!(
        f.pids.iter().all(|p| gunicorn.contains(p)),
        "{:?} of {gunicorn:?}",
        f.pids
    );
    for want in [
        "--workers 2 (its command line)",
        "--backlog 8 (its command line)",
    ] {
        assert!(f.remediation.contains(want), "{want}: {}", f.remediation);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A healthy unix upstream under keep-alive load: nothing above info,
/// scan after scan, and the socket is still shown behind the port.
#[test]
fn a_healthy_unix_upstream_under_load_is_quiet() {
    let test = "a_healthy_unix_upstream_under_load_is_quiet";
    let Some(venv) = venv(test) else {
        return;
    };
    if !have_nginx(test) {
        return;
    }
    let mut ns = Netns::new("udsok");
    let dir = std::env::temp_dir().join(format!("zombiescan-udsok-{}", std::process::id()));
    let sock = dir.join("app.sock").display().to_string();
    let dir = nginx_to_unix(&mut ns, "udsok", &sock);
    let bin = venv.join("bin/uvicorn").display().to_string();
    let app = support();
    ns.start(
        &[
            &bin,
            "app:asgi",
            "--app-dir",
            &app,
            "--uds",
            &sock,
            "--log-level",
            "warning",
        ],
        &[],
        &log("udsok-uvicorn"),
    );
    wait_listening(&ns, &sock);
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    ns.start(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/ok",
            "--loop",
            "--concurrency",
            "4",
        ],
        &[],
        &log("udsok-clients"),
    );
    ns.wait_ss_with(&["-xH"], "nginx's upstream connections", |o| {
        o.lines()
            .filter(|l| l.starts_with("u_str ESTAB") && l.split_whitespace().nth(4) == Some(&sock))
            .count()
            >= 1
    });
    for _ in 0..5 {
        let doc = ns.zombiescan_json(&["--port", "30020", "--stall", "1s"]);
        let loud: Vec<_> = doc
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(loud.is_empty(), "{loud:#?}");
        let p = doc.paths.iter().find(|p| p.path == sock).expect("shown");
        assert!(p.behind.iter().any(|b| b.port == 30020), "{:?}", p.behind);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
