//! A PostgreSQL server of the test's own and a pool of connections to it.

use super::*;

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
        ok(&chown);
        let data = dir.join("data");
        let initdb = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .expect("initdb");
        ok(&initdb);
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
    let doc = app.scan_until(&["--idle", "1s"], "idle_no_keepalive", |d| {
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
    ok(&down);
    std::fs::write(&trigger, b"go").expect("trigger");
    let doc = app.scan_until(&[], "half_open", |d| {
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

/// The seed's root cause: uvicorn whose async handler runs a synchronous
/// psycopg query that PostgreSQL (in another namespace) takes long to
/// answer. Clients give up: CLOSE_WAIT and a full queue on uvicorn, and
/// the findings name the connection to :5432 that sent a query and has
/// received nothing since, and the call uvicorn's thread is blocked in.
#[test]
fn uvicorn_blocked_on_a_slow_postgresql_query_names_the_query() {
    let test = "uvicorn_blocked_on_a_slow_postgresql_query_names_the_query";
    let Some(venv) = venv(test) else {
        return;
    };
    let Some(bin) = pg_bin() else {
        crate::netns::skip(test, "needs Debian's postgresql (bash .ci/run installs it)");
        return;
    };
    let mut db = Netns::new("pgslow");
    let mut app = Netns::new("pgweb");
    db.veth_to(&app, "10.231.6.1", "10.231.6.2");
    let _pg = Postgres::start(&mut db, &bin, "10.231.6.1");
    let uvicorn = venv.join("bin/uvicorn").display().to_string();
    let dir = support();
    let uv = app.start(
        &[
            &uvicorn,
            "app:asgi",
            "--app-dir",
            &dir,
            "--host",
            "127.0.0.1",
            "--port",
            "30020",
            "--backlog",
            "16",
            "--log-level",
            "warning",
        ],
        &[
            ("BLOCK_S", "300"),
            (
                "PG_DSN",
                "host=10.231.6.1 port=5432 user=postgres dbname=postgres",
            ),
        ],
        &log("pgweb-uvicorn"),
    );
    app.wait_ss("uvicorn listening", |o| {
        o.lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(":30020 "))
    });
    let sent = std::time::Instant::now();
    occupy(&mut app, &venv, "/db", 1, "pgweb-holder");
    // ss's truth: uvicorn's own connection to :5432, its query sent.
    app.wait_ss_with(&["-tanpiH"], "uvicorn's connection to PostgreSQL", |o| {
        o.lines().any(|l| {
            l.starts_with("ESTAB")
                && l.contains("10.231.6.1:5432")
                && l.contains(&format!("pid={uv},"))
        })
    });
    impatient(&app, &venv, "/db", 20);
    let doc = app.scan_until(
        &["--port", "30020", "--stall", "1s"],
        "the query waited on",
        |d| {
            d.findings.iter().any(|f| {
                f.waiting_on
                    .as_ref()
                    .is_some_and(|w| w.remote == "10.231.6.1:5432" && w.seconds >= 1.0)
            })
        },
    );
    let elapsed = sent.elapsed().as_secs_f64();
    let f = doc
        .findings
        .iter()
        .find(|f| f.waiting_on.is_some())
        .expect("a finding with what it waits on");
    said(
        "uvicorn, async handler with a sync psycopg query, PostgreSQL slow",
        "ESTAB to :5432, query sent, nothing received",
        f,
    );
    assert!(
        ["close_wait", "accept_queue_full", "app_not_reading"].contains(&f.kind.as_str()),
        "{}",
        f.kind
    );
    let w = f.waiting_on.as_ref().expect("waiting_on");
    assert_eq!(w.pid, uv, "uvicorn's own connection");
    assert_eq!(w.peer_server.as_deref(), Some("PostgreSQL"));
    assert!(
        w.seconds <= elapsed + 1.0,
        "waited {} s, but the query was sent {elapsed:.1} s ago",
        w.seconds
    );
    assert!(w.syscall.is_some(), "what uvicorn's thread is blocked in");
    assert!(
        f.explanation
            .starts_with(&format!("Likely cause: uvicorn (pid {uv}) has waited")),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation.contains("10.231.6.1:5432 (PostgreSQL)"),
        "{}",
        f.explanation
    );
    // A scan of the whole namespace folds uvicorn's connection to
    // PostgreSQL (healthy to the rules: nothing queued, no timer); what
    // uvicorn waits on is read back by the connection's inode.
    let whole = app.scan_until(&["--stall", "1s"], "the query waited on, no --port", |d| {
        d.findings.iter().any(|f| {
            f.waiting_on
                .as_ref()
                .is_some_and(|w| w.remote == "10.231.6.1:5432" && w.pid == uv)
        })
    });
    assert!(
        !whole
            .sockets
            .iter()
            .any(|s| s.remote == "10.231.6.1:5432" && s.findings.is_empty()),
        "the healthy connection is counted, not listed"
    );
    // ZOMBIESCAN_SHOW=1: the report a user would read at this moment.
    if std::env::var_os("ZOMBIESCAN_SHOW").is_some() {
        let out = app.zombiescan(&["--port", "30020", "--stall", "1s"]);
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
