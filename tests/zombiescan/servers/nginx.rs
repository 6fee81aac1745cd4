//! nginx in front of a blocked upstream.

use super::*;

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
    ok(&out);
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
    let doc = ns.scan_until(
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
    let doc = ns.scan_until(
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
        ok(&out);
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
    let doc = ns.scan_until(
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
