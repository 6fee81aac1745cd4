//! gunicorn's sync workers, all busy.

use super::*;

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
