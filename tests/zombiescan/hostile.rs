//! Names anyone can choose, and files anyone can write, rendered in every
//! format: no control or bidi character may reach the output raw, on
//! stdout or stderr, and every table keeps its columns.

use std::process::Command;

use zombiescan::render::sanitize::is_unsafe;

use crate::netns::{BIN, Netns, ok};

/// What an attacker puts in a process name or an argument: a colour, a
/// title change ended by BEL, a carriage return, a line feed, a C1 CSI, a
/// bidi override, a table separator, an HTML entity of a bidi mark.
const EVIL: &str = "ev\u{1b}[31mil\u{1b}]0;pwned\u{7}\r\n\u{9b}2J\u{202e}|&rlm;<b>\"'";

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("zombiescan-hostile-{}-{name}", std::process::id()))
}

/// No unsafe character; in a table, every row as many cells as the
/// header. `sep` is the cell separator of the format's tables.
fn clean(what: &str, text: &str, sep: Option<char>) {
    if let Some(bad) = text.chars().find(|c| is_unsafe(*c) && *c != '\n') {
        panic!("{what}: {:?} reached the output:\n{text}", bad);
    }
    let Some(sep) = sep else { return };
    let mut header: Option<usize> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if !t.starts_with(sep) {
            header = None;
            continue;
        }
        // A Markdown cell may hold an escaped separator: `\|`.
        let cells = t.matches(sep).count() - t.matches(&format!("\\{sep}")).count();
        match header {
            None => header = Some(cells),
            Some(h) => assert_eq!(cells, h, "{what}: a row lost its columns: {line}"),
        }
    }
}

#[test]
fn hostile_names_and_files_in_every_format() {
    live!();
    let mut ns = Netns::new("evil");
    // A process whose name is hostile: python3 under a hostile link name,
    // with a hostile argument (sockets.py ignores what it does not know).
    let dir = temp("bin");
    std::fs::create_dir_all(&dir).expect("dir");
    let link = crate::netns::python_as(&dir, "ev\u{1b}[31m|\u{202e}x");
    let evil_arg = format!("--evil={EVIL}");
    ns.spawn_as(
        link.to_str().expect("path"),
        &["listen", "--port", "30020", &evil_arg],
    );
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.wait_states(&[("CLOSE_WAIT", 2)]);
    // A unix listener under a hostile path, its queue full: the path is in
    // the findings, the unix table and a Prometheus label.
    let sock = dir.join(format!("app{EVIL}.sock"));
    let sock_s = sock.to_str().expect("path");
    ns.start(
        &[
            "python3",
            "-c",
            "import socket,sys,time\n\
             l=socket.socket(socket.AF_UNIX);l.bind(sys.argv[1]);l.listen(0)\n\
             c=socket.socket(socket.AF_UNIX);c.setblocking(False);c.connect(sys.argv[1])\n\
             time.sleep(3600)",
            sock_s,
        ],
        &[],
        &temp("unix.log"),
    );
    ns.wait_ss_with(&["-xlH"], "the hostile unix listener full", |o| {
        o.lines().any(|l| l.starts_with("u_str LISTEN 1 "))
    });
    let args = ["--stall", "0s", "--sockets"];
    for (format, sep) in [
        ("table", Some('│')),
        ("markdown", Some('|')),
        ("prometheus", None),
    ] {
        let out = ns.zombiescan(&[&args[..], &["--format", format]].concat());
        clean(format, &String::from_utf8_lossy(&out.stdout), sep);
    }
    // JSON keeps the data exact: the name reads back as it was.
    let doc = ns.zombiescan_json(&args);
    assert!(
        doc.processes.iter().any(|p| p.cmdline.contains(EVIL)),
        "{:?}",
        doc.processes
    );
    assert!(
        doc.paths.iter().any(|p| p.path == sock_s),
        "{:?}",
        doc.paths
    );
    // The same from a capture, analysed as another user.
    let cap = temp("evil.zsc");
    let out = ns.exec(&[BIN, "capture", "-o", cap.to_str().expect("path")]);
    ok(&out);
    for (format, sep) in [
        ("table", Some('│')),
        ("markdown", Some('|')),
        ("prometheus", None),
    ] {
        let out = Command::new(BIN)
            .arg("analyze")
            .arg(&cap)
            .args(args)
            .args(["--format", format])
            .output()
            .expect("analyze");
        ok(&out);
        clean(
            &format!("analyze {format}"),
            &String::from_utf8_lossy(&out.stdout),
            sep,
        );
    }
    let _ = std::fs::remove_file(&cap);
    let _ = std::fs::remove_file(temp("unix.log"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files written by hand: a recording whose times and names are hostile,
/// a capture whose content quotes control characters into the error.
#[test]
fn hostile_files_on_stdout_and_stderr() {
    let evil = serde_json::to_string(EVIL).expect("json");
    let line = |t_ms: u64| {
        format!(
            r#"{{"t":{evil},"t_ms":{t_ms},"host":{evil},"netns":{evil},"total":1,"by_state":{{"CLOSE_WAIT":{t_ms}}},"ports":[{{"port":30020,"direction":"inbound","remote":null,"by_state":{{"CLOSE_WAIT":{t_ms}}}}}],"processes":[{{"pid":7,"comm":{evil},"sockets":1,"fds_open":3,"fd_limit":null,"by_state":{{"CLOSE_WAIT":{t_ms}}}}}],"findings":[{{"kind":{evil},"severity":"warning","count":{t_ms},"ports":[30020],"pids":[7]}}],"counters":{{}}}}"#
        )
    };
    let rec = temp("evil.ndjson");
    std::fs::write(&rec, format!("{}\n{}\n{}\n", line(1), line(2), line(5))).expect("write");
    for (format, sep) in [
        ("table", Some('│')),
        ("markdown", Some('|')),
        ("html", None),
    ] {
        let out = Command::new(BIN)
            .arg("report")
            .arg(&rec)
            .args(["--format", format])
            .output()
            .expect("report");
        ok(&out);
        clean(
            &format!("report {format}"),
            &String::from_utf8_lossy(&out.stdout),
            sep,
        );
    }
    let _ = std::fs::remove_file(&rec);
    // An error that quotes the file: one line, nothing raw.
    let cap = temp("evil-state.zsc");
    let text = format!(
        r#"{{"format":"zombiescan-capture","version":1,"zombiescan":"0","snapshots":[{{"captured_at":{evil}}}]}}"#
    );
    std::fs::write(&cap, text).expect("write");
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&cap)
        .output()
        .expect("analyze");
    let _ = std::fs::remove_file(&cap);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    clean("stderr", &err, None);
}
