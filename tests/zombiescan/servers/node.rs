//! A node server whose event loop is blocked.

use super::*;

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
    ok(&out);
    ns.wait_ss_with(&["-tanHe"], "node blocked on /block", |o| {
        on_30020(&rows(o), "CLOSE_WAIT", |q| q <= 1) == 1
    });
    // Now the five send their requests, which nobody reads.
    std::fs::write(&go, b"go").expect("go");
    ns.wait_ss_with(&["-tanHe"], "5 requests unread", |o| {
        on_30020(&rows(o), "ESTABLISHED", |q| q == 64) == 5
    });
    let _ = std::fs::remove_file(&go);
    let doc = ns.scan_until(
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
