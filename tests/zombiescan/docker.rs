//! The deployment zombiescan exists for: uvicorn in a Docker container,
//! its port published on the host's loopback by docker-proxy, its event
//! loop blocked, scanned from the host with `--port`.
//!
//! The test runs a dockerd of its own (its own data root, exec root and
//! socket in a temporary directory, a bridge of its own on a private /24,
//! no iptables rules) and an image imported from the debootstrap root
//! `.ci/run` builds and keeps (python3 and a pip-installed uvicorn; no
//! registry is reachable, nothing is pulled). Everything is removed when
//! the test ends, even on failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::{BIN, live_or_skip, ok, ok_as, skip};

/// A dockerd of the test's own, stopped and cleaned up when dropped.
struct Dockerd {
    dir: PathBuf,
    host: String,
    bridge: String,
    child: Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = std::env::temp_dir().join(format!("zombiescan-docker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("docker dir");
        let bridge = format!("zsbr{}", std::process::id() % 10000);
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        for args in [
            vec!["link", "add", &bridge, "type", "bridge"],
            vec!["addr", "add", "10.231.201.1/24", "dev", &bridge],
            vec!["link", "set", &bridge, "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip");
            ok_as(&out, &format!("ip {args:?}"));
        }
        let host = format!("unix://{}/docker.sock", dir.display());
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["-H", &host, "--bridge", &bridge])
            .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd {
            dir,
            host,
            bridge,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .output()
            .expect("docker")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        ok_as(&out, &format!("docker {args:?}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount").arg("-R").arg(&self.dir).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ss -tanHe` inside the namespace of `pid`.
fn ss_in(pid: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", pid, "-n", "ss", "-tanHe"])
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn uvicorn_in_docker_scanned_from_the_host() {
    let test = "uvicorn_in_docker_scanned_from_the_host";
    if !live_or_skip(test) {
        return;
    }
    if Command::new("dockerd").arg("--version").output().is_err() {
        return skip(test, "needs dockerd (bash .ci/run installs docker.io)");
    }
    // The root .ci/run makes: $ZOMBIESCAN_ROOTFS, or ~/.cache/zombiescan/rootfs.
    let root = crate::servers::cached("ZOMBIESCAN_ROOTFS", "rootfs");
    if !root.join("opt/zs/uvicorn").exists() {
        return skip(
            test,
            &format!(
                "needs the image root at {} (bash .ci/run builds it)",
                root.display()
            ),
        );
    }
    let venv = crate::servers::cached("ZOMBIESCAN_VENV", "venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        return skip(
            test,
            "needs the servers' virtualenv (bash .ci/run makes it)",
        );
    }
    let d = Dockerd::start();
    // The image: the root as it is, imported.
    let mut tar = Command::new("tar")
        .args(["-C"])
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let import = Command::new("docker")
        .args(["-H", &d.host, "import", "-", "zombiescan-uvicorn:test"])
        .stdin(tar.stdout.take().expect("tar output"))
        .output()
        .expect("docker import");
    let tarred = tar.wait().expect("tar");
    assert!(tarred.success(), "tar of {}", root.display());
    ok(&import);
    let name = format!("zs-web-{}", std::process::id());
    // The container serves 30020; the host port is any free one of the
    // loopback, so that nothing else on the machine is in the way.
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let publish = format!("127.0.0.1:{host_port}:30020");
    let url = format!("http://127.0.0.1:{host_port}/block");
    let port_arg = host_port.to_string();
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    let started = Instant::now();
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &publish,
        "-v",
        &format!("{}:/app:ro", support.display()),
        "-e",
        "BLOCK_S=900",
        "-e",
        "PYTHONPATH=/opt/zs",
        "zombiescan-uvicorn:test",
        "python3",
        "-m",
        "uvicorn",
        "app:asgi",
        "--app-dir",
        "/app",
        "--host",
        "0.0.0.0",
        "--port",
        "30020",
        "--backlog",
        "16",
    ]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &name]);
    wait_for("uvicorn listening in the container", || {
        ss_in(&pid)
            .lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(":30020"))
    });
    // One request blocks the loop (through docker-proxy, as every client's).
    let clients = support.join("clients.py");
    let mut holder = Command::new(&py)
        .arg(&clients)
        .args([&url, "--count", "1", "--timeout", "900", "--then", "wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("holder");
    wait_for("the blocking request read", || {
        ss_in(&pid).lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"ESTAB")
                && f.get(1) == Some(&"0")
                && f.get(3).is_some_and(|a| a.ends_with(":30020"))
                && !l.contains("ino:0 ")
        })
    });
    let out = Command::new(&py)
        .arg(&clients)
        .args([&url, "--count", "40", "--timeout", "2"])
        .output()
        .expect("clients");
    ok(&out);
    let cw_in_container = ss_in(&pid)
        .lines()
        .filter(|l| l.starts_with("CLOSE-WAIT"))
        .count() as u64;
    assert!(cw_in_container >= 1);
    // The host scan leads with the container's diagnosis.
    let mut doc = Value::Null;
    wait_for("the container's close_wait in the host scan", || {
        let out = Command::new(BIN)
            .args(["--port", &port_arg, "--stall", "1s", "--json"])
            .output()
            .expect("zombiescan");
        ok(&out);
        doc = serde_json::from_slice(&out.stdout).expect("json");
        doc["namespaces"][0]["findings"]
            .as_array()
            .is_some_and(|f| {
                f.iter()
                    .any(|f| f["kind"] == "close_wait" && f["count"] == cw_in_container)
            })
    });
    crate::cli::assert_valid(serde_json::to_vec(&doc).expect("json").as_slice());
    let age = started.elapsed().as_secs_f64();
    let uv: u64 = pid.parse().expect("pid");
    let parts = doc["namespaces"].as_array().expect("namespaces");
    assert_eq!(parts.len(), 2, "{doc:#}");
    let c = &parts[0];
    assert_eq!(c["netns"]["container"]["runtime"], "docker");
    assert_eq!(
        c["netns"]["container"]["name"],
        name.as_str(),
        "named from the test's --data-root"
    );
    let findings = c["findings"].as_array().expect("findings");
    let kind = |k: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == k)
            .unwrap_or_else(|| panic!("{k}: {findings:#?}"))
    };
    let cw = kind("close_wait");
    assert_eq!(
        cw["pids"],
        serde_json::json!([uv]),
        "uvicorn's pid on the host"
    );
    assert!(
        cw["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("event loop is blocked"))
    );
    let q = kind("accept_queue_full");
    assert_eq!(q["pids"], serde_json::json!([uv]));
    for part in parts {
        for f in part["findings"].as_array().into_iter().flatten() {
            for key in ["oldest_s", "oldest_wait_s"] {
                if let Some(s) = f["evidence"][key].as_f64() {
                    assert!(
                        s <= age + 1.0,
                        "{key} {s} s in a container {age} s old: {f:#}"
                    );
                }
            }
        }
    }
    // The host's part: docker-proxy forwards the port, and is not the
    // culprit.
    let h = &parts[1];
    let hint = h["hints"][0].as_str().unwrap_or_default();
    assert!(
        hint.contains("forwarded by docker-proxy") && hint.contains(&name),
        "{hint}"
    );
    for f in h["findings"].as_array().into_iter().flatten() {
        let e = f["explanation"].as_str().unwrap_or_default();
        assert!(!e.contains("probably gone"), "{f:#}");
        if f["evidence"]["server"] == "docker-proxy" {
            assert!(e.contains(&name), "tied to the container: {f:#}");
        }
    }
    let _ = holder.kill();
    let _ = holder.wait();
}
