//! A RabbitMQ broker of the test's own (Debian's rabbitmq-server) and an
//! application's pika connections to it.

use super::*;

/// Debian's broker, run directly (its /usr/sbin wrapper switches to the
/// rabbitmq user, whose files are not the test's).
const RABBITMQ: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A broker in `ns`, its node, data and logs in a directory of its own,
/// guest allowed from other hosts (the client is in another namespace).
struct Broker {
    dir: PathBuf,
}

impl Broker {
    fn start(ns: &mut Netns) -> Broker {
        let dir = std::env::temp_dir().join(format!(
            "zombiescan-rabbitmq-{}-{}",
            std::process::id(),
            ns.name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("broker dir");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            "loopback_users.guest = false\nlisteners.tcp.default = 5672\n",
        )
        .expect("rabbitmq.conf");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        let d = |name: &str| dir.join(name).display().to_string();
        let (home, config, mnesia, logs, plugins, pid) = (
            d(""),
            d("rabbitmq"),
            d("mnesia"),
            d("log"),
            d("enabled_plugins"),
            d("pid"),
        );
        ns.start(
            &[RABBITMQ],
            &[
                ("HOME", &home),
                ("RABBITMQ_CONFIG_FILE", &config),
                ("RABBITMQ_MNESIA_BASE", &mnesia),
                ("RABBITMQ_LOG_BASE", &logs),
                ("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins),
                ("RABBITMQ_PID_FILE", &pid),
                ("RABBITMQ_NODENAME", "rabbit@localhost"),
            ],
            &log("rabbitmq"),
        );
        let until = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let out = ns.ss(&["-tlnH"]);
            if out.lines().any(|l| l.contains(":5672 ")) {
                break;
            }
            assert!(
                Instant::now() < until,
                "rabbitmq-server did not listen on 5672:\n{}",
                std::fs::read_to_string(log("rabbitmq")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Broker { dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// pika's BlockingConnection with heartbeat=0 to Debian's rabbitmq-server
/// in another namespace: idle, idle_no_keepalive toward :5672 with pika's
/// own settings; the broker's link cut while every connection publishes,
/// half_open with them again.
#[test]
fn pika_connections_without_heartbeats_idle_then_cut_off() {
    let test = "pika_connections_without_heartbeats_idle_then_cut_off";
    let Some(venv) = venv(test) else {
        return;
    };
    if !Path::new(RABBITMQ).exists() {
        crate::netns::skip(
            test,
            "needs Debian's rabbitmq-server (bash .ci/run installs it)",
        );
        return;
    }
    let mut mq = Netns::new("mq");
    let mut app = Netns::new("mqapp");
    mq.veth_to(&app, "10.231.7.1", "10.231.7.2");
    let _broker = Broker::start(&mut mq);
    let trigger = std::env::temp_dir().join(format!("zombiescan-mq-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&trigger);
    let py = venv.join("bin/python").display().to_string();
    let client = format!("{}/amqp_client.py", support());
    let trig = trigger.display().to_string();
    let pid = app.start(
        &[
            &py,
            &client,
            "10.231.7.1",
            "--count",
            "3",
            "--heartbeat",
            "0",
            "--publish-when",
            &trig,
        ],
        &[],
        &log("amqpclient"),
    );
    app.wait_ss("3 connections to the broker", |o| {
        o.lines()
            .filter(|l| l.starts_with("ESTAB") && l.contains("10.231.7.1:5672"))
            .count()
            == 3
    });
    let doc = app.scan_until(&["--idle", "1s"], "idle_no_keepalive", |d| {
        of_kind(d, "idle_no_keepalive")
            .first()
            .is_some_and(|f| f.count == 3)
    });
    let f = of_kind(&doc, "idle_no_keepalive")[0];
    said("pika heartbeat=0, idle", "3 ESTAB to :5672, no timer", f);
    assert_eq!(f.pids, vec![pid]);
    assert_eq!(f.evidence["direction"], "outbound");
    assert_eq!(f.evidence["remote"], "10.231.7.1:5672");
    assert!(
        f.explanation.contains("AMQP connections idle"),
        "{}",
        f.explanation
    );
    assert!(
        f.remediation.contains("heartbeat=N (never 0)"),
        "{}",
        f.remediation
    );
    let source = f.advice_source.as_deref().unwrap_or("");
    assert!(source.contains("pika/connection.py"), "{source}");
    // The broker's link goes down; then every connection publishes.
    let cut = Instant::now();
    ok(&mq.exec(&["ip", "link", "set", "zsa0", "down"]));
    std::fs::write(&trigger, b"go").expect("trigger");
    let doc = app.scan_until(&[], "half_open", |d| {
        of_kind(d, "half_open")
            .first()
            .is_some_and(|f| f.count == 3)
    });
    let _ = std::fs::remove_file(&trigger);
    let h = of_kind(&doc, "half_open")[0];
    said(
        "pika, broker link cut, publishing",
        "3 ESTAB retransmitting",
        h,
    );
    assert_eq!(h.pids, vec![pid]);
    assert_eq!(h.evidence["retransmitting"], 3);
    assert!(
        h.explanation.contains("The broker stopped acknowledging"),
        "{}",
        h.explanation
    );
    assert!(
        h.remediation
            .contains("pika: AMQP heartbeats notice a silent broker"),
        "{}",
        h.remediation
    );
    // No older than the silence it describes.
    let oldest = h.evidence["oldest_s"].as_f64().unwrap_or(f64::MAX);
    assert!(
        oldest <= cut.elapsed().as_secs_f64() + 0.5,
        "{oldest} s for a link cut {:?} ago",
        cut.elapsed()
    );
}
