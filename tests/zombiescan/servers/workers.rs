//! Multi-process servers: the supervisor holds the listener and never
//! accepts; its workers do, and they are the ones stuck. uvicorn
//! `--workers 2` and `--reload` (workers started by multiprocessing, comm
//! `python3`), gunicorn with uvicorn's worker class.

use super::*;

/// The processes of the namespace: pid → (parent, comm).
fn tree(ns: &Netns) -> Vec<(u32, u32, String)> {
    ns.pids()
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, ppid, comm.trim().to_string()))
        })
        .collect()
}

/// The children of `parent` that hold port 30020's listener, as `ss` says.
fn listening_children(ns: &Netns, parent: u32) -> Vec<u32> {
    let ss = ns.ss(&["-tlnpH", "sport", "= :30020"]);
    let mut kids: Vec<u32> = tree(ns)
        .into_iter()
        .filter(|(pid, pp, _)| *pp == parent && ss.contains(&format!("pid={pid},")))
        .map(|(pid, _, _)| pid)
        .collect();
    kids.sort_unstable();
    kids
}

/// The accepted connections on port 30020: (unread bytes, owner pid).
fn accepted(ns: &Netns) -> Vec<(u32, u32)> {
    ns.ss(&["-tanpH", "sport", "= :30020"])
        .lines()
        .filter(|l| l.starts_with("ESTAB"))
        .filter_map(|l| {
            let recv_q = l.split_whitespace().nth(1)?.parse().ok()?;
            let pid = l.split("pid=").nth(1)?.split(',').next()?.parse().ok()?;
            Some((recv_q, pid))
        })
        .collect()
}

/// Blocks every worker's loop with a request of its own, one at a time:
/// each is accepted by a worker still free (a blocked loop accepts
/// nothing), which reads it and blocks. Then impatient clients fill the
/// queue; scans until the full queue is a finding.
fn block_and_scan(ns: &mut Netns, venv: &Path, workers: &[u32], tag: &str) -> Document {
    let py = venv.join("bin/python").display().to_string();
    let clients = format!("{}/clients.py", support());
    let mut blocked: Vec<u32> = Vec::new();
    for i in 0..workers.len() * 2 {
        if workers.iter().all(|w| blocked.contains(w)) {
            break;
        }
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
        // Settled: accepted, and read by the worker that took it.
        ns.wait_ss_with(&["-tanpH"], "the blocking request read", |_| {
            let a = accepted(ns);
            a.len() > i && a.iter().all(|(q, _)| *q == 0)
        });
        blocked = accepted(ns).into_iter().map(|(_, pid)| pid).collect();
    }
    assert!(
        workers.iter().all(|w| blocked.contains(w)),
        "blocked {blocked:?} of {workers:?}"
    );
    impatient(ns, venv, "/block", 30);
    ns.scan_until(
        &["--port", "30020", "--stall", "1s"],
        "accept_queue_full",
        |d| !of_kind(d, "accept_queue_full").is_empty() && !of_kind(d, "close_wait").is_empty(),
    )
}

/// The words every multi-process finding must get right: the workers are
/// blamed by role, the supervisor only for holding the listener, settings
/// come from the supervisor's command line, python's `-c` is no config
/// file, and py-spy is pointed at a worker.
fn check(doc: &Document, server: &str, word: &str, sup: u32, workers: &[u32], backlog: &str) {
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let who = if workers.len() == 1 {
        format!("{server} (worker, pid {})", workers[0])
    } else {
        format!("{server} (workers, pids {})", list(workers))
    };
    let aq = of_kind(doc, "accept_queue_full")[0];
    said(
        &format!(
            "{server} {word} and {} worker(s), loops blocked",
            workers.len()
        ),
        "queue full",
        aq,
    );
    assert!(
        aq.explanation
            .contains(&format!("handshakes that {who} does not accept")),
        "{who}: {}",
        aq.explanation
    );
    assert!(
        aq.explanation
            .contains(&format!("Its {word} (pid {sup}) only holds the listener")),
        "{}",
        aq.explanation
    );
    assert!(
        aq.remediation.contains(backlog),
        "{backlog}: {}",
        aq.remediation
    );
    let cw = of_kind(doc, "close_wait")[0];
    assert!(cw.explanation.contains(&who), "{who}: {}", cw.explanation);
    for f in [aq, cw] {
        let text = format!("{} {}", f.explanation, f.remediation);
        assert!(!text.contains("config file"), "python's -c: {text}");
        assert!(
            !text.contains("python3 ("),
            "a worker named as python: {text}"
        );
        assert_eq!(f.evidence["server"], server);
        let mut pids = f.pids.clone();
        pids.sort_unstable();
        assert!(
            pids.iter().all(|p| *p == sup || workers.contains(p)),
            "{pids:?}: supervisor {sup}, workers {workers:?}"
        );
    }
    if let Some(at) = cw.remediation.find("py-spy dump --pid ") {
        let pid: u32 = cw.remediation[at + 18..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a pid after py-spy");
        assert!(
            workers.contains(&pid),
            "py-spy at {pid}, workers {workers:?}"
        );
    }
}

#[test]
fn uvicorn_with_two_workers_whose_loops_are_blocked() {
    let Some(venv) = venv("uvicorn_with_two_workers_whose_loops_are_blocked") else {
        return;
    };
    let mut ns = Netns::new("uvw");
    let sup = uvicorn(
        &mut ns,
        &venv,
        &["--workers", "2", "--backlog", "16"],
        "uvw",
    );
    // `ip netns exec` execs uvicorn: the pid started is uvicorn's.
    ns.wait_ss_with(&["-tlnpH"], "both workers listening", |_| {
        listening_children(&ns, sup).len() == 2
    });
    let workers = listening_children(&ns, sup);
    let doc = block_and_scan(&mut ns, &venv, &workers, "uvw-holder");
    check(
        &doc,
        "uvicorn",
        "supervisor",
        sup,
        &workers,
        "--backlog 16 (its command line)",
    );
    let cw = of_kind(&doc, "close_wait")[0];
    assert!(
        cw.remediation.contains("--workers 2 (its command line)"),
        "{}",
        cw.remediation
    );
}

#[test]
fn uvicorn_with_reload_whose_loop_is_blocked() {
    let Some(venv) = venv("uvicorn_with_reload_whose_loop_is_blocked") else {
        return;
    };
    let mut ns = Netns::new("uvr");
    let sup = uvicorn(&mut ns, &venv, &["--reload", "--backlog", "16"], "uvr");
    ns.wait_ss_with(&["-tlnpH"], "the worker listening", |_| {
        listening_children(&ns, sup).len() == 1
    });
    let workers = listening_children(&ns, sup);
    let doc = block_and_scan(&mut ns, &venv, &workers, "uvr-holder");
    check(
        &doc,
        "uvicorn",
        "supervisor",
        sup,
        &workers,
        "--backlog 16 (its command line)",
    );
    // --reload is still said to be for development only.
    let cw = of_kind(&doc, "close_wait")[0];
    assert!(
        cw.remediation.contains("--reload is on"),
        "{}",
        cw.remediation
    );
}

#[test]
fn gunicorn_with_uvicorn_workers_whose_loops_are_blocked() {
    let Some(venv) = venv("gunicorn_with_uvicorn_workers_whose_loops_are_blocked") else {
        return;
    };
    let mut ns = Netns::new("guw");
    let bin = venv.join("bin/gunicorn").display().to_string();
    let dir = support();
    let master = ns.start(
        &[
            &bin,
            "--chdir",
            &dir,
            "-w",
            "2",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "--backlog",
            "16",
            "--timeout",
            "600",
            "-b",
            "127.0.0.1:30020",
            "app:asgi",
        ],
        &[("BLOCK_S", "900")],
        &log("guw"),
    );
    ns.wait_ss_with(&["-tlnpH"], "both workers listening", |_| {
        listening_children(&ns, master).len() == 2
    });
    let workers = listening_children(&ns, master);
    let doc = block_and_scan(&mut ns, &venv, &workers, "guw-holder");
    check(
        &doc,
        "gunicorn",
        "master",
        master,
        &workers,
        "--backlog 16 (its command line)",
    );
    let aq = of_kind(&doc, "accept_queue_full")[0];
    assert!(
        aq.explanation.contains("event loop") && !aq.explanation.contains("sync worker"),
        "uvicorn's worker class, not gunicorn's sync one: {}",
        aq.explanation
    );
    assert!(
        aq.remediation.contains("--timeout 600 (its command line)"),
        "{}",
        aq.remediation
    );
}
