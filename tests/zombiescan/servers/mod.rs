//! The incidents of the SPEC built with the servers users run (uvicorn and
//! gunicorn from the pinned virtualenv `.ci/run` makes), in namespaces the
//! tests create. Real servers behave in ways a socket script does not:
//! asyncio closes a connection on the client's FIN unless its loop is
//! blocked, and connections nobody accepted wait in the queue with no
//! descriptor. What depends on a race (how many were accepted before the
//! loop blocked) is read from `ss` at that moment, never assumed.

mod broker;
mod gunicorn;
mod nginx;
mod node;
mod postgres;
mod unix;
mod uvicorn;
mod workers;

use std::path::{Path, PathBuf};
use std::time::Instant;

use zombiescan::render::json::{Document, Finding};

use crate::findings::of_kind;
use crate::netns::{Netns, live_or_skip, ok};

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

/// Scans port 30020 (with a 1 s stall) until close_wait counts the `cw`
/// CLOSE_WAIT sockets ss showed.
fn every_close_wait_flagged(ns: &Netns, cw: u32) -> Document {
    ns.scan_until(
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
    ok(&out);
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
