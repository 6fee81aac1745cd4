//! uvicorn: a blocked event loop (clients that leave, clients that wait), a
//! slow handler that does not block, streaming to clients that never read,
//! its descriptor limit, healthy keep-alive load, an idle client pool past
//! its keep-alive timeout.

use super::*;
use crate::netns::BIN;

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
    let doc = ns.scan_until(&["--port", "30020"], "half_open of SYN_SENT", |d| {
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
    let doc = ns.scan_until(
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
    ok(&out);
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
    let doc = ns.scan_until(&["--port", "30020"], "fd_exhaustion", |d| {
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

/// An httpx pool idle past uvicorn's keep-alive timeout: uvicorn
/// closes its side, the pool holds the client's in CLOSE_WAIT. The client's
/// finding is the pool's story (a warning at most, the client's pid, the
/// pool's settings); uvicorn's orphaned FIN_WAIT2 are its clients' ends.
#[test]
fn an_idle_http_pool_past_uvicorns_keep_alive_timeout() {
    let Some(venv) = venv("an_idle_http_pool_past_uvicorns_keep_alive_timeout") else {
        return;
    };
    let mut ns = Netns::new("uvka");
    uvicorn(&mut ns, &venv, &["--timeout-keep-alive", "1"], "uvka");
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let client = ns.start(
        &[
            &py,
            &clients,
            "http://127.0.0.1:30020/ok",
            "--keep",
            "--count",
            "3",
        ],
        &[],
        &log("uvka-clients"),
    );
    ns.wait_ss("pooled connections closed by uvicorn", |o| {
        o.lines().any(|l| {
            l.starts_with("CLOSE-WAIT") && l.split_whitespace().nth(4) == Some("127.0.0.1:30020")
        })
    });
    // ss at the moment is the truth for how many the pool holds.
    let held = || {
        ns.ss(&["-tnH", "state", "close-wait", "dport", "= :30020"])
            .lines()
            .count() as u32
    };
    let doc = ns.scan_until(&["--port", "30020", "--stall", "1s"], "close_wait", |d| {
        d.findings
            .iter()
            .any(|f| f.kind == "close_wait" && f.count == held())
    });
    let f = doc
        .findings
        .iter()
        .find(|f| f.kind == "close_wait")
        .expect("close_wait");
    assert_eq!(f.direction.as_deref(), Some("outbound"));
    assert_eq!(f.pids, vec![client]);
    assert_eq!(f.severity, "warning", "a pool is never critical");
    assert!(
        f.explanation
            .contains("closed these idle keep-alive connections")
            && f.remediation.contains("keepalive_expiry"),
        "{}\n{}",
        f.explanation,
        f.remediation
    );
    // uvicorn's side, orphaned: the clients of port 30020, not a peer server.
    let fin = doc
        .findings
        .iter()
        .find(|f| f.kind == "fin_wait2")
        .expect("uvicorn's orphaned FIN_WAIT2");
    assert_eq!(fin.severity, "info");
    assert_eq!(fin.direction.as_deref(), Some("inbound"));
    let words = format!("{} {}", fin.explanation, fin.remediation);
    assert!(
        words.contains("the clients of port 30020")
            && !words.contains("the peer is the server on port 30020"),
        "{words}"
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
    let doc = ns.scan_until(
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

/// The listener's Recv-Q of port 30020, as `ss -tln` shows it.
fn queue_30020(ns: &Netns) -> u32 {
    ns.ss(&["-tlnH", "sport", "= :30020"])
        .split_whitespace()
        .nth(1)
        .and_then(|q| q.parse().ok())
        .unwrap_or(0)
}

/// kill and connections still in an accept queue: destroying one frees no
/// queue slot (the kernel keeps it until the owner accepts it), so kill
/// leaves them alone and says so; with --include-queued it destroys them,
/// and ss shows the queue exactly as full as before.
#[test]
fn kill_frees_no_accept_queue_slot_and_leaves_queued_sockets_alone() {
    let Some(venv) = venv("kill_frees_no_accept_queue_slot_and_leaves_queued_sockets_alone") else {
        return;
    };
    let mut ns = Netns::new("uvkq");
    uvicorn(&mut ns, &venv, &["--backlog", "16"], "uvkq");
    occupy(&mut ns, &venv, "/block", 1, "uvkq-holder");
    impatient(&ns, &venv, "/block", 20);
    let (cw, queued) = server_side(&ns, "CLOSE_WAIT");
    assert!(queued >= 1, "ss: {cw} CLOSE_WAIT, {queued} never accepted");
    let before = queue_30020(&ns);
    assert!(before >= queued, "Recv-Q {before} for {queued} queued");
    let args = [
        "--port",
        "30020",
        "--finding",
        "close_wait",
        "--stall",
        "0s",
    ];
    let out = ns.exec(&[&[BIN, "kill"][..], &args, &["--yes"]].concat());
    ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{queued} left alone in an accept queue")),
        "{said}"
    );
    assert_eq!(server_side(&ns, "CLOSE_WAIT").1, queued, "none destroyed");
    let out = ns.exec(&[&[BIN, "kill"][..], &args, &["--include-queued", "--yes"]].concat());
    ok(&out);
    ns.wait_ss("the queued CLOSE_WAIT destroyed", |o| {
        !o.lines().any(|l| {
            l.starts_with("CLOSE-WAIT") && l.split_whitespace().nth(4) == Some("127.0.0.1:30020")
        })
    });
    // The kernel's truth: the slots stay taken.
    assert_eq!(queue_30020(&ns), before, "destroying them freed no slot");
}
