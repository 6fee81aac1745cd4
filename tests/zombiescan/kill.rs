//! `zombiescan kill` on the real kernel: it closes the sockets chosen, by
//! their identity, and nothing else; a dry run changes nothing.

use std::process::Command;

use zombiescan::render::kill::KillDoc;

use crate::netns::{BIN, Netns, ok, ss_counts};

fn kill(ns: &Netns, args: &[&str]) -> (KillDoc, std::process::Output) {
    let out = ns.exec(&[&[BIN, "kill", "--json"][..], args].concat());
    crate::cli::assert_valid_against("zombiescan-kill.schema.json", &out.stdout);
    let doc: KillDoc = serde_json::from_slice(&out.stdout).expect("kill JSON reads back");
    (doc, out)
}

fn sorted_ss(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = ns.ss(&["-tanH"]).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn kill_closes_the_zombies_and_nothing_else() {
    live!();
    let mut ns = Netns::new("kill");
    let server = ns.close_wait_leak(3, 2);
    ns.wait_states(&[("FIN_WAIT2", 3)]);
    // Without a choice: a usage error.
    let out = ns.exec(&[BIN, "kill", "--port", "30020"]);
    assert_eq!(out.status.code(), Some(2));
    // The dry run lists exactly them and changes nothing.
    let before = sorted_ss(&ns);
    let args = [
        "--port",
        "30020",
        "--finding",
        "close_wait",
        "--stall",
        "0s",
    ];
    let (plan, out) = kill(&ns, &args);
    ok(&out);
    assert!(plan.dry_run);
    assert_eq!(plan.summary.chosen, 3);
    assert!(
        plan.sockets
            .iter()
            .all(|s| s.state == "CLOSE_WAIT" && s.pids == vec![server] && s.result.is_none())
    );
    assert_eq!(sorted_ss(&ns), before, "a dry run changes nothing");
    // With --yes: no CLOSE_WAIT left; the listener, the healthy
    // connections and the server stay.
    let (done, out) = kill(&ns, &[&args[..], &["--yes"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(done.summary.destroyed, 3);
    let after = ss_counts(&ns.ss(&["-tanH"]));
    assert_eq!(after.get("CLOSE_WAIT"), None, "{after:?}");
    assert_eq!(after.get("LISTEN"), Some(&1));
    assert_eq!(
        after.get("ESTABLISHED"),
        Some(&4),
        "the healthy connections carry on"
    );
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(server as i32), None).is_ok(),
        "the server lives"
    );
    // Never a listener unless asked.
    let (plan, _) = kill(&ns, &["--port", "30020", "--state", "ESTABLISHED"]);
    assert!(plan.sockets.iter().all(|s| s.state != "LISTEN"));
    let (plan, _) = kill(&ns, &["--port", "30020", "--state", "LISTEN"]);
    assert_eq!(plan.summary.chosen, 1);
    // TIME_WAIT: the kernel destroys or refuses; either way it is said,
    // and ss agrees.
    ns.spawn(&["listen", "--port", "30021", "--on-accept", "close"]);
    ns.spawn(&[
        "connect",
        "--port",
        "30021",
        "--count",
        "2",
        "--then",
        "close-after-peer",
    ]);
    ns.wait_ss("2 TIME_WAIT", |o| {
        ss_counts(o).get("TIME_WAIT").copied().unwrap_or(0) >= 2
    });
    let (tw, out) = kill(&ns, &["--port", "30021", "--state", "TIME_WAIT", "--yes"]);
    let left = ss_counts(&ns.ss(&["-tanH"]))
        .get("TIME_WAIT")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        tw.summary.destroyed + tw.summary.refused + tw.summary.already_gone,
        tw.summary.chosen
    );
    assert_eq!(
        left, tw.summary.refused,
        "refused ones stay, destroyed ones go"
    );
    assert!(
        tw.sockets
            .iter()
            .all(|s| s.result.as_deref() != Some("refused") || s.reason.is_some())
    );
    assert!(out.status.code() != Some(3) || tw.summary.destroyed == 0);
    // As another user: nothing can be destroyed, exit 3 in one line.
    let out = ns.exec(
        &[
            &crate::netns::AS_NOBODY[..],
            &[
                BIN,
                "kill",
                "--port",
                "30020",
                "--state",
                "ESTABLISHED",
                "--yes",
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert_eq!(ss_counts(&ns.ss(&["-tanH"])).get("ESTABLISHED"), Some(&4));
}

#[test]
fn kill_spares_the_young_and_reaches_another_namespace() {
    live!();
    let mut ns = Netns::new("killold");
    ns.close_wait_leak(2, 0);
    // The first two are old enough once a scan with --stall 3s flags them.
    crate::findings::wait_for_finding(&ns, &["--stall", "3s"], "close_wait", 2);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "1", "--then", "close",
    ]);
    ns.wait_states(&[("CLOSE_WAIT", 3)]);
    // From the host's namespace, into this one.
    let out = Command::new(BIN)
        .args([
            "kill",
            "--netns",
            &ns.name,
            "--port",
            "30020",
            "--finding",
            "close_wait",
        ])
        .args(["--stall", "0s", "--older-than", "3s", "--yes", "--json"])
        .output()
        .expect("kill");
    ok(&out);
    let doc: KillDoc = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc.summary.destroyed >= 2, "{doc:?}");
    assert!(
        doc.sockets
            .iter()
            .all(|s| s.age_s.is_some_and(|a| a >= 3.0)),
        "{doc:?}"
    );
    assert_eq!(doc.summary.chosen + doc.summary.spared_young, 3);
    let left = ss_counts(&ns.ss(&["-tanH"]))
        .get("CLOSE_WAIT")
        .copied()
        .unwrap_or(0);
    assert_eq!(left, doc.summary.spared_young, "the young one stays");
}

/// A socket that closed between the scan and the destroy is never hit:
/// its identity (addresses and cookie) names no socket any more.
#[test]
fn a_socket_gone_since_the_scan_is_already_gone() {
    use zombiescan::collect::{self, destroy};
    live!();
    let mut ns = Netns::new("killgone");
    ns.close_wait_leak(1, 0);
    let opts = ns.scan_options(false);
    let snap = collect::scan(&opts, None).expect("scan").remove(0);
    let cw = snap
        .sockets
        .iter()
        .find(|s| s.state == zombiescan::model::TcpState::CloseWait)
        .expect("CLOSE_WAIT")
        .clone();
    let path = std::path::PathBuf::from(ns.path());
    let first = collect::netns::run_in(&path, || destroy::destroy(&[&cw])).expect("destroy");
    assert_eq!(first, vec![zombiescan::model::Destroyed::Destroyed]);
    let again = collect::netns::run_in(&path, || destroy::destroy(&[&cw])).expect("destroy");
    assert_eq!(again, vec![zombiescan::model::Destroyed::AlreadyGone]);
}

/// The owner of a destroyed socket learns it at its next write:
/// ECONNABORTED, where writing to a socket its peer merely closed succeeds.
#[test]
fn the_owner_next_write_fails_with_econnaborted() {
    live!();
    let mut ns = Netns::new("killrecv");
    let trigger = std::env::temp_dir().join(format!("zombiescan-recv-{}", std::process::id()));
    let log = std::env::temp_dir().join(format!("zombiescan-recv-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&trigger);
    let server = format!(
        "import socket, os, sys, time\n\
         l = socket.socket(); l.bind(('127.0.0.1', 30030)); l.listen(4)\n\
         cs = [l.accept()[0] for _ in range(2)]\n\
         while not os.path.exists({t:?}): time.sleep(0.05)\n\
         for c in cs:\n\
         \x20   try: print('sent', c.send(b'x'))\n\
         \x20   except OSError as e: print('error', e.errno)\n\
         sys.stdout.flush(); time.sleep(600)\n",
        t = trigger.display().to_string()
    );
    ns.start(&["python3", "-c", &server], &[], &log);
    ns.wait_ss("listening", |o| o.contains("127.0.0.1:30030"));
    ns.spawn(&[
        "connect", "--port", "30030", "--count", "2", "--then", "close",
    ]);
    ns.wait_states(&[("CLOSE_WAIT", 2)]);
    // One of the two is destroyed (the one with the higher client port).
    let (plan, _) = kill(&ns, &["--port", "30030", "--state", "CLOSE_WAIT"]);
    let victim = plan
        .sockets
        .iter()
        .map(|s| s.remote.clone())
        .max()
        .expect("two");
    let out = ns.exec(&[
        BIN,
        "kill",
        "--port",
        victim.rsplit(':').next().unwrap_or_default(),
        "--state",
        "CLOSE_WAIT",
        "--yes",
    ]);
    ok(&out);
    ns.wait_states(&[("CLOSE_WAIT", 1)]);
    std::fs::write(&trigger, b"go").expect("trigger");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.lines().count() >= 2 || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&trigger);
    let _ = std::fs::remove_file(&log);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["error 103", "sent 1"],
        "ECONNABORTED for the destroyed one only"
    );
}
