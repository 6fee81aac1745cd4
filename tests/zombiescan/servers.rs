//! The incidents of the SPEC built with the servers users run (uvicorn and
//! gunicorn from the pinned virtualenv `.ci/run` makes), in namespaces the
//! tests create. Real servers behave in ways a socket script does not:
//! asyncio closes a connection on the client's FIN unless its loop is
//! blocked, and connections nobody accepted wait in the queue with no
//! descriptor. What depends on a race (how many were accepted before the
//! loop blocked) is read from `ss` at that moment, never assumed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use zombiescan::render::json::{Document, Finding};

use crate::findings::of_kind;
use crate::netns::{Netns, live_or_skip};

/// What `.ci/run` keeps between runs: `$VAR`, or
/// `~/.cache/zombiescan/NAME`.
pub fn cached(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        Path::new(&home).join(".cache/zombiescan").join(name)
    })
}

/// The virtualenv with the pinned servers and clients
/// (tests/support/requirements.txt), made by `.ci/run`:
/// `$ZOMBIESCAN_VENV`, or `~/.cache/zombiescan/venv`.
fn venv(test: &str) -> Option<PathBuf> {
    if !live_or_skip(test) {
        return None;
    }
    let dir = cached("ZOMBIESCAN_VENV", "venv");
    if dir.join("bin/uvicorn").exists() && dir.join("bin/gunicorn").exists() {
        return Some(dir);
    }
    let why = format!(
        "needs the servers' virtualenv at {} (bash .ci/run makes it)",
        dir.display()
    );
    crate::netns::skip(test, &why);
    None
}

fn support() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .display()
        .to_string()
}

fn log(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zombiescan-{name}-{}.log", std::process::id()))
}

/// One line of `ss -tanHe`.
#[derive(Debug)]
struct Row {
    state: String,
    recv_q: u64,
    local: String,
    remote: String,
    inode: u64,
}

fn rows(out: &str) -> Vec<Row> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Row {
                state: crate::netns::ss_state(f.first()?).to_string(),
                recv_q: f.get(1)?.parse().ok()?,
                local: f.get(3)?.to_string(),
                remote: f.get(4)?.to_string(),
                inode: f
                    .iter()
                    .find_map(|w| w.strip_prefix("ino:"))
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

/// The server side of port 30020 in `state`: (all, never accepted).
fn server_side(ns: &Netns, state: &str) -> (u32, u32) {
    let r = rows(&ns.ss(&["-tanHe"]));
    let here: Vec<&Row> = r
        .iter()
        .filter(|r| r.state == state && r.local.ends_with(":30020"))
        .collect();
    (
        here.len() as u32,
        here.iter().filter(|r| r.inode == 0).count() as u32,
    )
}

/// One row of what a scenario showed and what zombiescan said, with the
/// first sentence of its advice (seen with `--nocapture`).
fn said(scenario: &str, ss: &str, f: &Finding) {
    let first = f.remediation.split(". ").next().unwrap_or_default();
    eprintln!(
        "| {scenario} | {ss} | {} {} ×{}, pids {:?} | {first}. |",
        f.severity, f.kind, f.count, f.pids
    );
}

/// Scans until `ready` holds, at most 30 s.
fn scan_until(
    ns: &Netns,
    args: &[&str],
    what: &str,
    ready: impl Fn(&Document) -> bool,
) -> Document {
    ns.scan_until(args, what, std::time::Duration::from_secs(30), ready)
}

/// Scans port 30020 (with a 1 s stall) until close_wait counts the `cw`
/// CLOSE_WAIT sockets ss showed.
fn every_close_wait_flagged(ns: &Netns, cw: u32) -> Document {
    scan_until(
        ns,
        &["--port", "30020", "--stall", "1s"],
        "every CLOSE_WAIT flagged",
        |d| {
            of_kind(d, "close_wait")
                .first()
                .is_some_and(|f| f.count == cw)
        },
    )
}

/// A request that is read and then blocks its worker: waits until the
/// server has read it (an accepted socket with nothing left unread).
fn occupy(ns: &mut Netns, venv: &Path, path: &str, n: usize, tag: &str) {
    occupy_on(ns, venv, 30020, path, n, tag);
}

fn occupy_on(ns: &mut Netns, venv: &Path, port: u16, path: &str, n: usize, tag: &str) {
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let url = format!("http://127.0.0.1:{port}{path}");
    let at = format!(":{port}");
    let count = n.to_string();
    ns.start(
        &[
            &py,
            &clients,
            &url,
            "--count",
            &count,
            "--timeout",
            "900",
            "--then",
            "wait",
        ],
        &[],
        &log(tag),
    );
    ns.wait_ss_with(&["-tanHe"], "the blocking requests read", |o| {
        rows(o)
            .iter()
            .filter(|r| {
                r.state == "ESTABLISHED" && r.local.ends_with(&at) && r.inode != 0 && r.recv_q == 0
            })
            .count()
            >= n
    });
}

/// `count` clients that give up after 1 s and leave; returns their output.
fn impatient(ns: &Netns, venv: &Path, path: &str, count: u32) -> String {
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let url = format!("http://127.0.0.1:30020{path}");
    let out = ns.run(
        &[
            &py,
            &clients,
            &url,
            "--count",
            &count.to_string(),
            "--timeout",
            "1",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn uvicorn(ns: &mut Netns, venv: &Path, extra: &[&str], tag: &str) -> u32 {
    uvicorn_on(ns, venv, 30020, extra, tag)
}

fn uvicorn_on(ns: &mut Netns, venv: &Path, port: u16, extra: &[&str], tag: &str) -> u32 {
    let bin = venv.join("bin/uvicorn").display().to_string();
    let dir = support();
    let port_s = port.to_string();
    let args = [
        &[
            bin.as_str(),
            "app:asgi",
            "--app-dir",
            &dir,
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "--log-level",
            "warning",
        ][..],
        extra,
    ]
    .concat();
    let pid = ns.start(&args, &[("BLOCK_S", "900")], &log(tag));
    let at = format!(":{port} ");
    ns.wait_ss("uvicorn listening", |o| {
        o.lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(&at))
    });
    pid
}

#[test]
fn uvicorn_whose_event_loop_is_blocked() {
    let Some(venv) = venv("uvicorn_whose_event_loop_is_blocked") else {
        return;
    };
    let start = Instant::now();
    let mut ns = Netns::new("uvblk");
    let uv = uvicorn(&mut ns, &venv, &["--backlog", "8"], "uvblk");
    // One request blocks the loop; then clients come, wait 1 s, and leave.
    occupy(&mut ns, &venv, "/block", 1, "uvblk-holder");
    impatient(&ns, &venv, "/block", 20);
    let (cw, queued) = server_side(&ns, "CLOSE_WAIT");
    assert!(
        queued >= 1 && cw >= queued,
        "ss: {cw} CLOSE_WAIT, {queued} never accepted"
    );
    let doc = every_close_wait_flagged(&ns, cw);
    let f = of_kind(&doc, "close_wait")[0];
    assert_eq!(f.pids, vec![uv], "the listener's owner, never nobody");
    let shown = format!("{cw} CLOSE_WAIT, {queued} of them ino:0");
    said("uvicorn, loop blocked, clients leave", &shown, f);
    assert_eq!(f.evidence["in_accept_queue"], queued);
    assert_eq!(f.evidence["server"], "uvicorn");
    assert!(
        f.explanation.contains("event loop is blocked"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation.contains("never accepted"),
        "{}",
        f.explanation
    );
    assert!(!f.explanation.contains("orphan"), "{}", f.explanation);
    assert!(f.remediation.contains("py-spy dump"), "{}", f.remediation);
    assert!(f.evidence["oldest_s"].as_f64().unwrap_or(0.0) <= start.elapsed().as_secs_f64());
    // The queue does not move: accept_queue_full, whatever its fill.
    let q = of_kind(&doc, "accept_queue_full");
    assert_eq!(q.len(), 1, "{:#?}", doc.findings);
    assert_eq!(q[0].pids, vec![uv]);
    said("uvicorn, loop blocked, clients leave", &shown, q[0]);
    assert!(
        q[0].explanation
            .contains("uvicorn accepts on its event loop")
    );
    assert!(
        q[0].remediation.contains("--backlog 8 (its command line)"),
        "{}",
        q[0].remediation
    );

    // New clients' SYNs are dropped by the full queue: SYN_SENT, not a
    // dead peer, and no age older than the sockets.
    let syn_start = Instant::now();
    ns.spawn(&[
        "connect",
        "--port",
        "30020",
        "--count",
        "2",
        "--nonblocking",
    ]);
    let doc = scan_until(&ns, &["--port", "30020"], "half_open of SYN_SENT", |d| {
        !of_kind(d, "half_open").is_empty()
    });
    let h = of_kind(&doc, "half_open")[0];
    assert_eq!(h.evidence["syn_sent_unanswered"], 2);
    said("new clients of that full queue", "2 SYN-SENT", h);
    assert!(
        h.explanation.contains("accept queue is full"),
        "{}",
        h.explanation
    );
    assert!(!h.explanation.contains("probably gone"));
    assert!(!h.remediation.contains("tcp_retries2"), "{}", h.remediation);
    let oldest = h.evidence["oldest_s"].as_f64().unwrap_or(f64::MAX);
    assert!(
        oldest <= syn_start.elapsed().as_secs_f64() + 0.5,
        "{oldest} s for sockets {:?} old",
        syn_start.elapsed()
    );
}

/// The control: the same impatient clients against a handler that awaits
/// (the loop stays free). asyncio closes each connection on the client's
/// FIN: nothing may be flagged.
#[test]
fn uvicorn_with_a_slow_handler_that_does_not_block_is_quiet() {
    let Some(venv) = venv("uvicorn_with_a_slow_handler_that_does_not_block_is_quiet") else {
        return;
    };
    let mut ns = Netns::new("uvslow");
    uvicorn(&mut ns, &venv, &[], "uvslow");
    let out = impatient(&ns, &venv, "/slow", 20);
    assert!(
        out.contains("\"ReadTimeout\": 20"),
        "every client connected: {out}"
    );
    ns.wait_ss("uvicorn closed every connection", |o| {
        !o.lines().any(|l| l.starts_with("CLOSE-WAIT"))
    });
    for _ in 0..5 {
        let doc = ns.zombiescan_json(&["--port", "30020", "--stall", "1s"]);
        let loud: Vec<&Finding> = doc
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(loud.is_empty(), "{loud:#?}");
    }
}

/// gunicorn's sync workers all busy, a small backlog, clients that give
/// up: the CLOSE_WAIT wait in the queue, and the advice quotes the
/// settings on gunicorn's command line.
#[test]
fn gunicorn_sync_workers_all_busy() {
    let Some(venv) = venv("gunicorn_sync_workers_all_busy") else {
        return;
    };
    let mut ns = Netns::new("gunicorn");
    let bin = venv.join("bin/gunicorn").display().to_string();
    let dir = support();
    ns.start(
        &[
            &bin,
            "--chdir",
            &dir,
            "-w",
            "2",
            "--backlog",
            "8",
            "--timeout",
            "600",
            "-b",
            "127.0.0.1:30020",
            "app:wsgi",
        ],
        &[("BLOCK_S", "900")],
        &log("gunicorn"),
    );
    ns.wait_ss("gunicorn listening", |o| {
        o.lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(":30020"))
    });
    occupy(&mut ns, &venv, "/block", 2, "gunicorn-holder");
    let gunicorn = ns.pids();
    impatient(&ns, &venv, "/block", 20);
    let (cw, queued) = server_side(&ns, "CLOSE_WAIT");
    assert!(queued >= 1, "ss: {cw} CLOSE_WAIT, {queued} never accepted");
    let doc = every_close_wait_flagged(&ns, cw);
    let f = of_kind(&doc, "close_wait")[0];
    said(
        "gunicorn -w 2 --backlog 8, workers busy",
        &format!("{cw} CLOSE_WAIT, {queued} ino:0"),
        f,
    );
    assert_eq!(f.evidence["in_accept_queue"], queued);
    assert_eq!(f.evidence["server"], "gunicorn");
    // The master and both workers hold the listener.
    let mut pids = f.pids.clone();
    pids.sort_unstable();
    assert!(pids.len() >= 3, "{pids:?}");
    assert!(
        pids.iter().all(|p| gunicorn.contains(p)),
        "{pids:?} of {gunicorn:?}"
    );
    assert!(
        f.explanation.contains("--workers 2 (its command line)"),
        "{}",
        f.explanation
    );
    let q = of_kind(&doc, "accept_queue_full");
    assert_eq!(q.len(), 1, "{:#?}", doc.findings);
    assert!(q[0].remediation.contains("--backlog 8 (its command line)"));
    assert!(q[0].remediation.contains("--threads (default 1)"));
    assert!(q[0].explanation.contains("Each gunicorn sync worker"));
}

/// Clients that never read a streamed response: uvicorn's writes wait
/// behind a zero window, and the advice is uvicorn's (no send timeout;
/// SO_SNDTIMEO does nothing on its non-blocking sockets).
#[test]
fn uvicorn_streaming_to_clients_that_never_read() {
    if let Some(venv) = venv("uvicorn_streaming_to_clients_that_never_read") {
        stream_to_clients_that_never_read(&venv, &[]);
        // Clients that cut their buffer once connected: the server
        // retransmits and the clients acknowledge. Alive, not half-open.
        stream_to_clients_that_never_read(&venv, &["--shrink"]);
    }
}

fn stream_to_clients_that_never_read(venv: &Path, how: &[&str]) {
    let mut ns = Netns::new("uvstream");
    let uv = uvicorn(&mut ns, venv, &[], "uvstream");
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let args = [
        &[
            py.as_str(),
            &clients,
            "http://127.0.0.1:30020/stream",
            "--no-read",
            "--count",
            "3",
        ][..],
        how,
    ]
    .concat();
    ns.start(&args, &[], &log("uvstream-clients"));
    let doc = scan_until(
        &ns,
        &["--port", "30020", "--stall", "1s"],
        "3 peer_not_reading",
        |d| {
            of_kind(d, "peer_not_reading")
                .iter()
                .any(|f| f.count == 3 && f.evidence["direction"] == "inbound")
        },
    );
    let f = of_kind(&doc, "peer_not_reading")
        .into_iter()
        .find(|f| f.evidence["direction"] == "inbound")
        .expect("inbound");
    said(
        &format!("uvicorn streaming, clients never read {how:?}"),
        "3 Send-Q stuck",
        f,
    );
    assert_eq!(f.pids, vec![uv]);
    assert!(
        f.explanation.contains("uvicorn writes through asyncio"),
        "{}",
        f.explanation
    );
    assert!(
        f.remediation.contains("SO_SNDTIMEO does nothing"),
        "{}",
        f.remediation
    );
    assert!(!f.remediation.contains("drain()"));
    assert!(of_kind(&doc, "half_open").is_empty(), "{:#?}", doc.findings);
}

/// uvicorn out of descriptors: the connections it cannot accept wait in
/// the queue, and the finding says so with uvicorn's own bound.
#[test]
fn uvicorn_at_its_descriptor_limit() {
    let Some(venv) = venv("uvicorn_at_its_descriptor_limit") else {
        return;
    };
    let mut ns = Netns::new("uvfd");
    let uv = uvicorn(&mut ns, &venv, &[], "uvfd");
    let open = std::fs::read_dir(format!("/proc/{uv}/fd"))
        .expect("uvicorn's fds")
        .count();
    let limit = (open + 8).to_string();
    let out = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &uv.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .output()
        .expect("prlimit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Clients whose requests take long (the loop stays free): uvicorn
    // accepts until it has no descriptor left; the rest wait in the queue.
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    ns.start(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/slow",
            "--count",
            "30",
            "--timeout",
            "900",
            "--then",
            "wait",
        ],
        &[],
        &log("uvfd-clients"),
    );
    ns.wait_ss_with(&["-tanHe"], "connections waiting unaccepted", |o| {
        rows(o)
            .iter()
            .any(|r| r.state == "ESTABLISHED" && r.local.ends_with(":30020") && r.inode == 0)
    });
    let doc = scan_until(&ns, &["--port", "30020"], "fd_exhaustion", |d| {
        !of_kind(d, "fd_exhaustion").is_empty()
    });
    let (_, waiting) = server_side(&ns, "ESTABLISHED");
    let f = of_kind(&doc, "fd_exhaustion")[0];
    said(
        "uvicorn at its fd limit",
        "connections waiting with ino:0",
        f,
    );
    assert_eq!(f.pids, vec![uv]);
    assert_eq!(f.severity, "critical", "{:#?}", f);
    assert!(
        f.evidence["in_accept_queue"]
            .as_u64()
            .is_some_and(|n| n >= 1 && n <= u64::from(waiting) + 1)
    );
    assert!(
        f.explanation.contains("wait in the accept queue"),
        "{}",
        f.explanation
    );
    assert!(
        f.remediation.contains("--limit-concurrency (not set)"),
        "{}",
        f.remediation
    );
    assert!(f.remediation.contains("LimitNOFILE="));
}

/// A healthy server under keep-alive load: nothing above info, scan after
/// scan.
#[test]
fn uvicorn_under_healthy_keep_alive_load_is_quiet() {
    let Some(venv) = venv("uvicorn_under_healthy_keep_alive_load_is_quiet") else {
        return;
    };
    let mut ns = Netns::new("uvok");
    uvicorn(&mut ns, &venv, &[], "uvok");
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
        &log("uvok-clients"),
    );
    ns.wait_ss("4 keep-alive connections", |o| {
        o.lines()
            .filter(|l| l.starts_with("ESTAB") && l.contains("127.0.0.1:30020 "))
            .count()
            >= 4
    });
    for _ in 0..10 {
        let doc = ns.zombiescan_json(&["--port", "30020", "--stall", "1s"]);
        let loud: Vec<&Finding> = doc
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(loud.is_empty(), "{loud:#?}");
    }
}

/// Debian's PostgreSQL server binaries, as `.ci/run` installs them.
fn pg_bin() -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut v: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").exists())
        .collect();
    v.sort();
    v.pop()
}

/// A PostgreSQL server of the test's own: a fresh cluster in a temporary
/// directory, run as the postgres user inside `ns`, listening on `addr`.
struct Postgres {
    dir: PathBuf,
}

impl Postgres {
    fn start(ns: &mut Netns, bin: &Path, addr: &str) -> Postgres {
        let dir =
            std::env::temp_dir().join(format!("zombiescan-pg-{}-{}", std::process::id(), ns.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg dir");
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .output()
            .expect("chown");
        assert!(chown.status.success());
        let data = dir.join("data");
        let initdb = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "{}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let hba = data.join("pg_hba.conf");
        let mut conf = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        conf.push_str("host all all 10.231.0.0/16 trust\n");
        std::fs::write(&hba, conf).expect("pg_hba.conf");
        let postgres = bin.join("postgres").display().to_string();
        let data_s = data.display().to_string();
        let dir_s = dir.display().to_string();
        let listen = format!("listen_addresses={addr}");
        ns.start(
            &[
                "runuser", "-u", "postgres", "--", &postgres, "-D", &data_s, "-k", &dir_s, "-c",
                &listen, "-p", "5432",
            ],
            &[],
            &log("postgres"),
        );
        ns.wait_ss("postgres listening", |o| {
            o.lines()
                .any(|l| l.starts_with("LISTEN") && l.contains(":5432"))
        });
        Postgres { dir }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An application's pool of PostgreSQL connections, idle with TCP
/// keepalive off, then the database's link cut while queries are sent:
/// idle_no_keepalive and half_open, each with libpq's own settings.
#[test]
fn a_postgresql_pool_idle_without_keepalive_then_cut_off() {
    let Some(venv) = venv("a_postgresql_pool_idle_without_keepalive_then_cut_off") else {
        return;
    };
    let Some(bin) = pg_bin() else {
        crate::netns::skip(
            "a_postgresql_pool_idle_without_keepalive_then_cut_off",
            "needs Debian's postgresql (bash .ci/run installs it)",
        );
        return;
    };
    let mut db = Netns::new("pgdb");
    let mut app = Netns::new("pgapp");
    db.veth_to(&app, "10.231.5.1", "10.231.5.2");
    let _pg = Postgres::start(&mut db, &bin, "10.231.5.1");
    let trigger = std::env::temp_dir().join(format!("zombiescan-pg-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&trigger);
    let py = venv.join("bin/python").display().to_string();
    let client = format!("{}/pg_client.py", support());
    let trig = trigger.display().to_string();
    let pid = app.start(
        &[
            &py,
            &client,
            "host=10.231.5.1 port=5432 user=postgres dbname=postgres keepalives=0",
            "--count",
            "4",
            "--query-when",
            &trig,
        ],
        &[],
        &log("pgclient"),
    );
    app.wait_ss("4 connections to PostgreSQL", |o| {
        o.lines()
            .filter(|l| l.starts_with("ESTAB") && l.contains("10.231.5.1:5432"))
            .count()
            == 4
    });
    let doc = scan_until(&app, &["--idle", "1s"], "idle_no_keepalive", |d| {
        of_kind(d, "idle_no_keepalive")
            .first()
            .is_some_and(|f| f.count == 4)
    });
    let f = of_kind(&doc, "idle_no_keepalive")[0];
    said(
        "psycopg pool idle, keepalives=0",
        "4 ESTAB to :5432, no timer",
        f,
    );
    assert_eq!(f.pids, vec![pid]);
    assert_eq!(f.evidence["direction"], "outbound");
    assert_eq!(f.evidence["remote"], "10.231.5.1:5432");
    assert_eq!(f.evidence["peer_server"], "postgres");
    assert!(
        f.remediation.contains("keepalives_idle"),
        "{}",
        f.remediation
    );
    assert!(
        f.remediation.contains("tcp_user_timeout"),
        "{}",
        f.remediation
    );
    assert!(
        f.remediation.contains("With SQLAlchemy, pool_recycle"),
        "{}",
        f.remediation
    );
    // The database's link goes down; then every connection sends a query.
    let down = db.exec(&["ip", "link", "set", "zsa0", "down"]);
    assert!(down.status.success());
    std::fs::write(&trigger, b"go").expect("trigger");
    let doc = scan_until(&app, &[], "half_open", |d| {
        of_kind(d, "half_open")
            .first()
            .is_some_and(|f| f.count == 4)
    });
    let _ = std::fs::remove_file(&trigger);
    let h = of_kind(&doc, "half_open")[0];
    said(
        "psycopg pool, database link cut",
        "4 ESTAB retransmitting",
        h,
    );
    assert_eq!(h.pids, vec![pid]);
    assert_eq!(h.evidence["retransmitting"], 4);
    assert!(
        h.explanation.contains("The database stopped acknowledging"),
        "{}",
        h.explanation
    );
    assert!(
        h.remediation.contains("tcp_user_timeout"),
        "{}",
        h.remediation
    );
    assert!(h.remediation.contains("tcp_retries2"), "{}", h.remediation);
}

/// Whether nginx is there (in CI it must be).
fn have_nginx(test: &str) -> bool {
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok()
    {
        return true;
    }
    crate::netns::skip(test, "needs nginx (bash .ci/run installs nginx-light)");
    false
}

/// Starts nginx (one worker) in the namespace with these `server` blocks,
/// its files in a directory of its own (returned: remove it when done), and
/// waits until it listens.
fn nginx(ns: &mut Netns, tag: &str, servers: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zombiescan-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("nginx dir");
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
          fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         {servers}}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let conf_s = conf_path.display().to_string();
    let prefix = format!("{d}/");
    ns.start(
        &[
            "nginx",
            "-p",
            &prefix,
            "-c",
            &conf_s,
            "-e",
            &format!("{d}/error.log"),
        ],
        &[],
        &log(tag),
    );
    let ports: Vec<String> = servers
        .split("listen ")
        .skip(1)
        .filter_map(|l| l.split(';').next())
        .filter_map(|a| a.rsplit(':').next())
        .map(|p| format!(":{p} "))
        .collect();
    ns.wait_ss("nginx listening", |o| {
        ports.iter().all(|p| {
            o.lines()
                .any(|l| l.starts_with("LISTEN") && l.contains(p.as_str()))
        })
    });
    dir
}

/// nginx on 30020 in front of a uvicorn on 8000 whose loop is blocked,
/// with a short proxy_read_timeout: port 30020 looks calm while CLOSE_WAIT
/// piles up on 8000 and nginx's closed upstream connections wait in
/// FIN_WAIT2. The scan of 30020 points at 8000; the scan of 8000 blames
/// uvicorn and ties the FIN_WAIT2 to it.
#[test]
fn nginx_in_front_of_a_blocked_upstream() {
    let Some(venv) = venv("nginx_in_front_of_a_blocked_upstream") else {
        return;
    };
    if !have_nginx("nginx_in_front_of_a_blocked_upstream") {
        return;
    }
    let mut ns = Netns::new("nginx");
    let uv = uvicorn_on(&mut ns, &venv, 8000, &[], "nginx-upstream");
    let dir = nginx(
        &mut ns,
        "nginx",
        "  server {\n   listen 127.0.0.1:30020;\n   location / {\n    proxy_pass http://127.0.0.1:8000;\n\
             proxy_read_timeout 1s;\n   }\n  }\n",
    );
    // The upstream's loop blocks on one request; then clients come through
    // nginx, which gives up on the upstream after 1 s.
    occupy_on(&mut ns, &venv, 8000, "/block", 1, "nginx-holder");
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let out = ns.run(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/block",
            "--count",
            "10",
            "--timeout",
            "5",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // nginx closed its side of each upstream connection: once the FINs
    // are acknowledged, orphaned FIN_WAIT2 toward 8000, CLOSE_WAIT on it.
    ns.wait_ss_with(&["-tanHe"], "nginx's closes acknowledged", |o| {
        let r = rows(o);
        let toward = |st: &str| {
            r.iter()
                .filter(|r| r.state == st && r.remote.ends_with(":8000") && r.inode == 0)
                .count()
        };
        toward("FIN_WAIT1") == 0 && toward("FIN_WAIT2") >= 1
    });
    let r = rows(&ns.ss(&["-tanHe"]));
    let cw = r
        .iter()
        .filter(|r| r.state == "CLOSE_WAIT" && r.local.ends_with(":8000"))
        .count() as u32;
    assert!(cw >= 1, "{r:#?}");
    // The scan of the front port points at the upstream.
    let doc = scan_until(
        &ns,
        &["--port", "30020", "--stall", "1s"],
        "a pointer to 8000",
        |d| {
            d.hints
                .iter()
                .any(|h| h.contains("port 8000 shows trouble"))
        },
    );
    let hint = doc
        .hints
        .iter()
        .find(|h| h.contains("port 8000"))
        .expect("hint");
    assert!(hint.ends_with("zombiescan --port 8000"), "{hint}");
    assert!(hint.contains("never accepted"), "{hint}");
    let _ = std::fs::remove_dir_all(&dir);
    // And the scan it points to blames uvicorn, and ties nginx's FIN_WAIT2
    // to it.
    let doc = scan_until(
        &ns,
        &["--port", "8000", "--stall", "1s"],
        "close_wait on 8000",
        |d| {
            of_kind(d, "close_wait")
                .iter()
                .any(|f| f.ports == vec![8000] && f.evidence["direction"] == "inbound")
        },
    );
    let f = of_kind(&doc, "close_wait")
        .into_iter()
        .find(|f| f.evidence["direction"] == "inbound")
        .expect("inbound close_wait");
    said(
        "nginx :30020 -> blocked uvicorn :8000, scan of 8000",
        &format!("{cw} CLOSE_WAIT on 8000"),
        f,
    );
    assert_eq!(f.pids, vec![uv]);
    assert!(f.explanation.contains("event loop is blocked"));
    if let Some(fw) = of_kind(&doc, "fin_wait2").first() {
        assert!(
            fw.remediation.contains("close_wait finding in this report"),
            "{}",
            fw.remediation
        );
    }
}

/// Clients that give up on nginx while the upstream is blocked: with
/// proxy_ignore_client_abort on (30020) nginx keeps each connection in
/// CLOSE_WAIT until the upstream answers; with the default, off (30021), it
/// closes at the client's FIN. The close_wait finding blames the nginx
/// worker and names the directive.
#[test]
fn nginx_keeps_close_wait_only_when_it_ignores_client_aborts() {
    let test = "nginx_keeps_close_wait_only_when_it_ignores_client_aborts";
    let Some(venv) = venv(test) else {
        return;
    };
    if !have_nginx(test) {
        return;
    }
    let mut ns = Netns::new("ngxabort");
    uvicorn_on(&mut ns, &venv, 8000, &[], "ngxabort-upstream");
    let location =
        "   location / {\n    proxy_pass http://127.0.0.1:8000;\n    proxy_read_timeout 120s;\n";
    let dir = nginx(
        &mut ns,
        "ngxabort",
        &format!(
            "  server {{\n   listen 127.0.0.1:30020;\n{location}    proxy_ignore_client_abort on;\n   }}\n  }}\n\
               server {{\n   listen 127.0.0.1:30021;\n{location}   }}\n  }}\n"
        ),
    );
    occupy_on(&mut ns, &venv, 8000, "/block", 1, "ngxabort-holder");
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    for port in [30020, 30021] {
        let url = format!("http://127.0.0.1:{port}/block");
        let out = ns.run(
            &[&py, &clients, &url, "--count", "5", "--timeout", "1"],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Off: the clients' sockets end in TIME_WAIT (nginx answered their FIN
    // with its own); on: nginx's sides wait in CLOSE_WAIT.
    let count = |r: &[Row], st: &str, local: &str, remote: &str| {
        r.iter()
            .filter(|r| r.state == st && r.local.ends_with(local) && r.remote.ends_with(remote))
            .count()
    };
    ns.wait_ss_with(
        &["-tanHe"],
        "5 CLOSE_WAIT on 30020, 5 TIME_WAIT toward 30021",
        |o| {
            let r = rows(o);
            count(&r, "CLOSE_WAIT", ":30020", "") == 5 && count(&r, "TIME_WAIT", "", ":30021") == 5
        },
    );
    let r = rows(&ns.ss(&["-tanHe"]));
    assert_eq!(count(&r, "CLOSE_WAIT", ":30021", ""), 0, "{r:#?}");
    let _ = std::fs::remove_dir_all(&dir);
    let doc = scan_until(
        &ns,
        &["--port", "30020", "--stall", "1s"],
        "close_wait on 30020",
        |d| {
            of_kind(d, "close_wait")
                .iter()
                .any(|f| f.ports == vec![30020] && f.count == 5)
        },
    );
    let f = of_kind(&doc, "close_wait")
        .into_iter()
        .find(|f| f.ports == vec![30020])
        .expect("close_wait");
    said(
        "nginx proxy_ignore_client_abort on, upstream blocked, clients leave after 1 s",
        "5 CLOSE_WAIT on 30020",
        f,
    );
    let nginx_pids: Vec<u32> = doc
        .processes
        .iter()
        .filter(|p| p.comm == "nginx")
        .map(|p| p.pid)
        .collect();
    assert!(
        !f.pids.is_empty() && f.pids.iter().all(|p| nginx_pids.contains(p)),
        "{:?} of {nginx_pids:?}",
        f.pids
    );
    assert!(
        f.explanation.contains("proxy_ignore_client_abort"),
        "{}",
        f.explanation
    );
    assert!(
        f.advice_source
            .as_deref()
            .is_some_and(|s| s.contains("proxy_ignore_client_abort"))
    );
    // The port nginx closes on is quiet.
    let doc = ns.zombiescan_json(&["--port", "30021", "--stall", "1s"]);
    assert!(of_kind(&doc, "close_wait").is_empty());
}

/// A node server whose event loop a synchronous call stops: the requests
/// that keep-alive clients send on connections node had accepted sit unread
/// (app_not_reading), blamed on node, with the Node row's advice.
#[test]
fn node_whose_event_loop_is_blocked() {
    let test = "node_whose_event_loop_is_blocked";
    let Some(venv) = venv(test) else {
        return;
    };
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::netns::skip(test, "needs node (bash .ci/run installs Debian's nodejs)");
        return;
    }
    let mut ns = Netns::new("node");
    let js = format!("{}/blocking.js", support());
    let node = ns.start(&["node", &js, "30020"], &[], &log("node"));
    ns.wait_ss("node listening", |o| {
        o.lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(":30020 "))
    });
    let go = std::env::temp_dir().join(format!("zombiescan-node-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let go_s = go.display().to_string();
    ns.spawn(&[
        "connect",
        "--port",
        "30020",
        "--count",
        "5",
        "--send",
        "64",
        "--send-when",
        &go_s,
    ]);
    let on_30020 = |r: &[Row], st: &str, recv_q: fn(u64) -> bool| {
        r.iter()
            .filter(|r| r.state == st && r.local.ends_with(":30020") && recv_q(r.recv_q))
            .count()
    };
    // node accepted all five (its side has an inode) while its loop ran.
    ns.wait_ss_with(&["-tanHe"], "5 connections accepted by node", |o| {
        rows(o)
            .iter()
            .filter(|r| r.state == "ESTABLISHED" && r.local.ends_with(":30020") && r.inode != 0)
            .count()
            == 5
    });
    // One request stops the loop; its client gives up after 1 s. Node read
    // it (nothing unread but the FIN, which ss counts as 1) and never
    // answered the client's FIN: blocked.
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let out = ns.run(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/block",
            "--count",
            "1",
            "--timeout",
            "1",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns.wait_ss_with(&["-tanHe"], "node blocked on /block", |o| {
        on_30020(&rows(o), "CLOSE_WAIT", |q| q <= 1) == 1
    });
    // Now the five send their requests, which nobody reads.
    std::fs::write(&go, b"go").expect("go");
    ns.wait_ss_with(&["-tanHe"], "5 requests unread", |o| {
        on_30020(&rows(o), "ESTABLISHED", |q| q == 64) == 5
    });
    let _ = std::fs::remove_file(&go);
    let doc = scan_until(
        &ns,
        &["--port", "30020", "--stall", "1s"],
        "5 app_not_reading",
        |d| of_kind(d, "app_not_reading").iter().any(|f| f.count == 5),
    );
    let f = of_kind(&doc, "app_not_reading")
        .into_iter()
        .find(|f| f.count == 5)
        .expect("app_not_reading");
    said(
        "node, event loop blocked by a synchronous call, 5 keep-alive clients send",
        "5 ESTAB with Recv-Q 64 on node's side",
        f,
    );
    assert_eq!(f.pids, vec![node]);
    assert!(
        f.explanation.contains("node event loop is blocked"),
        "{}",
        f.explanation
    );
    assert!(
        f.advice_source
            .as_deref()
            .is_some_and(|s| s.contains("dont-block-the-event-loop"))
    );
}

/// The same blocked loop with clients that wait instead of leaving: their
/// requests sit unaccepted in the queue. Nobody closed anything, so no
/// close_wait; the queue that does not move is the finding.
#[test]
fn uvicorn_whose_event_loop_is_blocked_with_clients_that_wait() {
    let Some(venv) = venv("uvicorn_whose_event_loop_is_blocked_with_clients_that_wait") else {
        return;
    };
    let mut ns = Netns::new("uvwait");
    let uv = uvicorn(&mut ns, &venv, &[], "uvwait");
    occupy(&mut ns, &venv, "/block", 1, "uvwait-holder");
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    ns.start(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/block",
            "--count",
            "10",
            "--timeout",
            "900",
            "--then",
            "wait",
        ],
        &[],
        &log("uvwait-clients"),
    );
    ns.wait_ss_with(&["-tanHe"], "10 requests waiting unaccepted", |o| {
        rows(o)
            .iter()
            .filter(|r| {
                r.state == "ESTABLISHED"
                    && r.local.ends_with(":30020")
                    && r.inode == 0
                    && r.recv_q > 0
            })
            .count()
            == 10
    });
    let doc = scan_until(
        &ns,
        &["--port", "30020", "--stall", "1s"],
        "accept_queue_full of a queue that does not move",
        |d| !of_kind(d, "accept_queue_full").is_empty(),
    );
    let q = of_kind(&doc, "accept_queue_full")[0];
    said(
        "uvicorn, loop blocked, clients wait",
        "10 ESTAB ino:0 with requests",
        q,
    );
    assert_eq!(q.pids, vec![uv]);
    assert_eq!(q.count, 10);
    assert!(
        q.evidence["oldest_wait_s"]
            .as_f64()
            .is_some_and(|w| w >= 1.0)
    );
    assert!(
        q.explanation.contains("to be accepted"),
        "{}",
        q.explanation
    );
    assert!(
        of_kind(&doc, "close_wait").is_empty(),
        "{:#?}",
        doc.findings
    );
    assert!(
        of_kind(&doc, "app_not_reading").is_empty(),
        "unaccepted requests are the queue's, not a reader's: {:#?}",
        doc.findings
    );
}
