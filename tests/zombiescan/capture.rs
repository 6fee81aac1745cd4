//! `capture` and `analyze`: a capture analysed later gives the report the
//! scan gave; bad files are refused with one clear line.

use std::process::Command;

use zombiescan::render::json::Document;

use crate::netns::{BIN, Netns, ok};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("zombiescan-{}-{name}", std::process::id()))
}

#[test]
fn analysing_a_capture_reproduces_the_scan() {
    live!();
    let mut ns = Netns::new("cap");
    let server = ns.spawn(&["listen", "--port", "30020", "--workers", "2"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "4", "--send", "100",
    ]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "3", "--then", "close",
    ]);
    ns.spawn(&["listen", "--port", "30021"]);
    ns.spawn(&["connect", "--port", "30021", "--count", "2"]);
    ns.wait_accepted(9);
    let file = temp("cap.zsc");
    let f = file.to_str().expect("path");
    for format in ["json", "table", "markdown"] {
        let scan = ns.exec(&[BIN, "capture", "-o", f, "--stall", "0s", "--format", format]);
        ok(&scan);
        assert!(String::from_utf8_lossy(&scan.stderr).contains("captured"));
        // Elsewhere (outside the namespace), as another user, to whom the
        // private file is handed over.
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("hand the capture over");
        let analyze = crate::netns::as_nobody()
            .args([BIN, "analyze", f])
            .args(["--stall", "0s", "--format", format])
            .output()
            .expect("analyze");
        ok(&analyze);
        // The Markdown report quotes its command line, which differs.
        let text = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.contains(" capture -o ") && !l.contains(" analyze "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            text(&scan),
            text(&analyze),
            "{format}: analyze differs from the scan"
        );
    }
    // The same filters as a scan: narrowing the capture to one port.
    let out = Command::new(BIN)
        .args(["analyze", f, "--port", "30021", "--json"])
        .output()
        .expect("analyze");
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (doc.summary.total, doc.filter.ports.clone()),
        (5, vec![30021])
    );
    // --from FILE says the same as analyze FILE.
    let from = Command::new(BIN)
        .args(["--from", f, "--port", "30021", "--json"])
        .output()
        .expect("--from");
    let from_doc: Document = serde_json::from_slice(&from.stdout).expect("json");
    assert_eq!(
        serde_json::to_value(&from_doc.sockets).expect("json"),
        serde_json::to_value(&doc.sockets).expect("json")
    );
    assert_eq!(from_doc.summary.total, doc.summary.total);
    assert_eq!(from_doc.source, doc.source);
    assert!(
        doc.processes.iter().all(|p| !server.contains(&p.pid)),
        "30020's server holds nothing on 30021"
    );
    let out = Command::new(BIN)
        .args(["analyze", f, "--pid", &server[0].to_string(), "--json"])
        .output()
        .expect("analyze");
    let doc: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc.processes.iter().all(|p| p.pid == server[0]));
    assert!(doc.summary.by_state.listen == 1 && doc.summary.total >= 1);
    let out = Command::new(BIN)
        .args([
            "analyze",
            f,
            "--state",
            "CLOSE_WAIT",
            "--stall",
            "0s",
            "--fail-on",
            "warning",
        ])
        .output()
        .expect("analyze");
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings in a capture fail as in a scan"
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn bad_capture_files_are_refused_in_one_line() {
    let good = temp("good.zsc");
    let out = Command::new(BIN)
        .args([
            "capture",
            "-o",
            good.to_str().expect("path"),
            "--no-processes",
        ])
        .output()
        .expect("capture");
    ok(&out);
    let bytes = std::fs::read(&good).expect("read");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "future",
            br#"{"format":"zombiescan-capture","version":2,"snapshots":[]}"#.to_vec(),
            "newer zombiescan",
        ),
        (
            "foreign",
            b"GET / HTTP/1.1\r\n".to_vec(),
            "not a zombiescan capture",
        ),
        ("empty", Vec::new(), "truncated"),
        (
            "other-json",
            br#"{"schema_version":1}"#.to_vec(),
            "not a zombiescan capture",
        ),
    ];
    for (name, content, want) in cases {
        let path = temp(name);
        std::fs::write(&path, content).expect("write");
        let out = Command::new(BIN)
            .args(["analyze", path.to_str().expect("path")])
            .output()
            .expect("run");
        let _ = std::fs::remove_file(&path);
        assert_eq!(out.status.code(), Some(3), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    let out = Command::new(BIN)
        .args(["analyze", "/nonexistent/x.zsc"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let _ = std::fs::remove_file(&good);
}

/// Captures and recordings are private (0600: command lines hold
/// passwords) and never written through a symbolic link planted at their
/// path.
#[test]
fn captures_and_recordings_are_private_and_never_follow_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("written").permissions().mode() & 0o777;
    let cap = temp("private.zsc");
    let rec = temp("private.ndjson");
    for p in [&cap, &rec] {
        let _ = std::fs::remove_file(p);
    }
    let out = Command::new(BIN)
        .args(["capture", "-o"])
        .arg(&cap)
        .output()
        .expect("capture");
    ok(&out);
    assert_eq!(mode(&cap), 0o600);
    let out = Command::new(BIN)
        .args(["--watch", "0.1s", "--count", "1", "--record"])
        .arg(&rec)
        .output()
        .expect("record");
    ok(&out);
    assert_eq!(mode(&rec), 0o600);
    // A link planted where the file goes: refused, its target untouched.
    let target = temp("victim");
    std::fs::write(&target, b"precious\n").expect("victim");
    for (args, link) in [
        (vec!["capture", "-o"], temp("link.zsc")),
        (
            vec!["--watch", "0.1s", "--count", "1", "--record"],
            temp("link.ndjson"),
        ),
    ] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let out = Command::new(BIN)
            .args(&args)
            .arg(&link)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).expect("victim"), b"precious\n");
        let _ = std::fs::remove_file(&link);
    }
    for p in [&cap, &rec, &target] {
        let _ = std::fs::remove_file(p);
    }
}

/// Input is read with bounds: what is not a regular file, what is larger
/// than the bound, what inflates past it, a recording line of any length.
/// Each gets one line and exit 3 (a long recording line is skipped and
/// counted), and the bound names the variable that raises it.
#[test]
fn hostile_input_is_refused_within_bounds() {
    use std::io::Write;
    let one_line = |out: &std::process::Output, want: &str, what: &str| {
        assert_eq!(out.status.code(), Some(3), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
    };
    for cmd in ["analyze", "report"] {
        let out = Command::new(BIN)
            .args([cmd, "/dev/zero"])
            .output()
            .expect("run");
        one_line(&out, "not a regular file", cmd);
    }
    // A sparse file past the bound is refused before a byte is read.
    let sparse = temp("sparse.zsc");
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse");
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&sparse)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&sparse);
    one_line(&out, "ZOMBIESCAN_MAX_INPUT", "sparse");
    // A gzip bomb of zeros is no JSON: refused at its first byte.
    let bomb = temp("bomb.zsc");
    let gzip = |byte: u8, mib: usize| {
        let f = std::fs::File::create(&bomb).expect("bomb");
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let chunk = vec![byte; 1 << 20];
        for _ in 0..mib {
            gz.write_all(&chunk).expect("write");
        }
        gz.finish().expect("finish");
    };
    gzip(0, 64);
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&bomb)
        .output()
        .expect("run");
    one_line(&out, "not a zombiescan capture", "zeros");
    // One of spaces is JSON's whitespace: parsed as it inflates, never
    // held, and refused at the bound (32 MiB here) in a few MiB.
    gzip(b' ', 48);
    let (code, err, mib) = crate::peak_rss(
        Command::new(BIN)
            .arg("analyze")
            .arg(&bomb)
            .env("ZOMBIESCAN_MAX_INPUT", (32u64 << 20).to_string()),
    );
    let _ = std::fs::remove_file(&bomb);
    assert_eq!((code, err.lines().count()), (Some(3), 1), "{err}");
    assert!(
        err.contains("inflates larger than the bound on input, 33554432 bytes"),
        "{err}"
    );
    assert!(mib < 24.0, "the bomb took {mib:.0} MiB");
    // A recording with a line longer than any sample: skipped, counted.
    let rec = temp("long.ndjson");
    let good = r#"{"t":"2026-11-25T03:00:00.000Z","t_ms":1,"host":"h","netns":"n","total":1,"by_state":{"LISTEN":1},"ports":[],"processes":[],"findings":[],"counters":{}}"#;
    let mut text = format!("{good}\n");
    text.push_str(&"x".repeat(3 << 20));
    text.push('\n');
    text.push_str(&good.replace(r#""t_ms":1"#, r#""t_ms":2"#));
    text.push('\n');
    std::fs::write(&rec, text).expect("write");
    let out = Command::new(BIN)
        .args(["report", "--format", "markdown"])
        .arg(&rec)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&rec);
    ok(&out);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("2 samples"), "{md}");
}
