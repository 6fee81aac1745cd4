//! Throwaway network namespaces with real sockets in them.
//!
//! Each `Netns` is created by the test and removed when dropped, even when
//! the test fails: every process inside is killed, then the namespace is
//! deleted. Traffic stays on the namespace's loopback, or on a veth pair
//! between two namespaces the test created.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A link named `name` in `dir` to this machine's python3: a process
/// started through it has `name` as its comm.
pub fn python_as(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8(out.stdout).expect("utf-8");
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(python.trim(), &link).expect("symlink");
    link
}

pub const BIN: &str = env!("CARGO_BIN_EXE_zombiescan");

/// The command line prefix that runs what follows as nobody (uid and gid
/// 65534, no groups): inside a namespace with [`Netns::exec`].
pub const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// A command that runs what its arguments name as nobody.
pub fn as_nobody() -> Command {
    let mut c = Command::new(AS_NOBODY[0]);
    c.args(&AS_NOBODY[1..]);
    c
}

fn sockets_py() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/sockets.py")
        .display()
        .to_string()
}

/// True when live tests can run. Without root they are skipped, loudly; in
/// CI (CI set) a missing privilege is a failure, not a skip.
pub fn live_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    let py = Command::new("python3").arg("-V").output().is_ok();
    if root && ip && py {
        return true;
    }
    skip(
        test,
        &format!(
            "needs root, iproute2 and python3 (root={root}, ip={ip}, python3={py}); \
             run as root to exercise the kernel"
        ),
    );
    false
}

/// A test that cannot run here says so loudly and returns; in CI (CI set)
/// what it lacks is a failure: CI installs it all.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI must run it");
    }
    eprintln!("\n!!! SKIPPED {test}: {why}.\n");
}

/// `out` of a command that must have succeeded; else the test fails with
/// its stderr.
pub fn ok(out: &Output) -> &Output {
    ok_as(out, "the command")
}

/// [`ok`], naming what ran.
pub fn ok_as<'a>(out: &'a Output, what: &str) -> &'a Output {
    assert!(
        out.status.success(),
        "{what} exited {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A helper process from sockets.py, with its event lines.
pub struct Helper {
    events: Receiver<Value>,
    stdin: ChildStdin,
    child: Child,
}

pub struct Netns {
    pub name: String,
    helpers: Vec<Helper>,
    /// Servers and clients started with `start`: killed with the namespace.
    programs: Vec<Child>,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        // Unique across the tests of this run, which go in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("zs-{tag}-{}-{n}", std::process::id());
        // A namespace left by a killed run of the same pid would collide.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name,
            helpers: Vec::new(),
            programs: Vec::new(),
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        // RFC 1337: a TIME_WAIT ignores RSTs. Without it, on a loaded machine
        // a client's late ACK of a FIN it already answered makes the TIME_WAIT
        // re-ACK, the closed client answers RST, and the RST kills the
        // TIME_WAIT (seen in 2-4% of runs with tcpdump): tests that count
        // TIME_WAIT would wait for one the kernel has already dropped.
        let out = ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_rfc1337=1"]);
        ok_as(&out, "sysctl tcp_rfc1337");
        ns
    }

    /// A veth pair from this namespace to `peer`: `addr` here, `peer_addr`
    /// there (both /24 inside the test's own namespaces).
    pub fn veth_to(&self, peer: &Netns, addr: &str, peer_addr: &str) {
        let (a, b) = ("zsa0", "zsb0");
        ip(&[
            "-n", &self.name, "link", "add", a, "type", "veth", "peer", "name", b, "netns",
            &peer.name,
        ]);
        ip(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            a,
        ]);
        ip(&[
            "-n",
            &peer.name,
            "addr",
            "add",
            &format!("{peer_addr}/24"),
            "dev",
            b,
        ]);
        ip(&["-n", &self.name, "link", "set", a, "up"]);
        ip(&["-n", &peer.name, "link", "set", b, "up"]);
    }

    /// Its `ip netns` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// What the library scans this namespace with: netlink, every socket
    /// kept, owners looked up where `owners`, no port followed.
    pub fn scan_options(&self, owners: bool) -> zombiescan::collect::ScanOptions {
        zombiescan::collect::ScanOptions {
            source: zombiescan::collect::SourceChoice::Netlink,
            filter: Default::default(),
            owners,
            netns: Some(self.path()),
            follow: false,
            fold: None,
        }
    }

    /// The CLOSE_WAIT leak most tests start from: a server on 30020 that
    /// never closes, `leaked` clients that connect and close (CLOSE_WAIT
    /// there, orphaned FIN_WAIT2 here) and `held` that stay. Returns once
    /// all are accepted and the `leaked` are in CLOSE_WAIT, with the
    /// server's pid.
    pub fn close_wait_leak(&mut self, leaked: u32, held: u32) -> u32 {
        let server = self.spawn(&["listen", "--port", "30020"])[0];
        let count = leaked.to_string();
        self.spawn(&[
            "connect", "--port", "30020", "--count", &count, "--then", "close",
        ]);
        if held > 0 {
            self.spawn(&["connect", "--port", "30020", "--count", &held.to_string()]);
        }
        self.wait_accepted(u64::from(leaked + held));
        self.wait_states(&[("CLOSE_WAIT", leaked)]);
        server
    }

    /// Starts `sockets.py ARGS` inside the namespace, waits for it to say it
    /// is ready, and returns its pids.
    pub fn spawn(&mut self, args: &[&str]) -> Vec<u32> {
        self.spawn_as("python3", args)
    }

    /// The same, run by `python` (a link to python3 named as another
    /// program, say).
    pub fn spawn_as(&mut self, python: &str, args: &[&str]) -> Vec<u32> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, python, &sockets_py()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sockets.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("sockets.py {args:?} did not get ready"));
        let pids: Vec<u32> = ready["pids"]
            .as_array()
            .expect("pids")
            .iter()
            .map(|p| p.as_u64().expect("pid") as u32)
            .collect();
        self.helpers.push(Helper {
            events: rx,
            stdin,
            child,
        });
        pids
    }

    /// Starts `cmd` (with `env`) inside the namespace, its output in
    /// `log`, and returns its pid (`ip netns exec` execs the command).
    pub fn start(&mut self, cmd: &[&str], env: &[(&str, &str)], log: &Path) -> u32 {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let pid = child.id();
        self.programs.push(child);
        pid
    }

    /// Runs `cmd` inside the namespace to its end and returns its output.
    pub fn run(&self, cmd: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
    }

    /// Every pid in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        let out = ip(&["netns", "pids", &self.name]);
        let mut v: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        v.sort_unstable();
        v
    }

    /// Waits until the listeners started so far accepted `n` connections.
    pub fn wait_accepted(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut per_pid = std::collections::HashMap::new();
        while per_pid.values().sum::<u64>() < n {
            assert!(
                Instant::now() < deadline,
                "only {per_pid:?} accepted of {n}"
            );
            for h in &self.helpers {
                while let Ok(ev) = h.events.try_recv() {
                    if let (Some(a), Some(pid)) = (ev["accepted"].as_u64(), ev["pid"].as_u64()) {
                        per_pid.insert(pid, a);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    /// Runs zombiescan inside the namespace; panics unless it exits 0.
    pub fn zombiescan(&self, args: &[&str]) -> Output {
        let out = self.exec(&[&[BIN], args].concat());
        ok_as(&out, &format!("zombiescan {args:?}"));
        out
    }

    pub fn zombiescan_json(&self, args: &[&str]) -> zombiescan::render::json::Document {
        let out = self.zombiescan(&[args, &["--json"]].concat());
        serde_json::from_slice(&out.stdout).expect("zombiescan JSON reads back into its types")
    }

    /// [`Netns::zombiescan_json`], its owners found by `owners`: "bpf"
    /// (the default where it can be used) or "proc" (ZOMBIESCAN_OWNERS).
    pub fn zombiescan_json_owners(
        &self,
        args: &[&str],
        owners: &str,
    ) -> zombiescan::render::json::Document {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, BIN])
            .args(args)
            .arg("--json")
            .env("ZOMBIESCAN_OWNERS", owners)
            .output()
            .expect("ip netns exec");
        ok_as(&out, &format!("zombiescan {args:?} (owners {owners})"));
        serde_json::from_slice(&out.stdout).expect("zombiescan JSON reads back into its types")
    }

    /// Scans with `args` until `ready` holds (timers need time to fire),
    /// failing with the findings seen after 30 s, a bound for a loaded
    /// machine.
    pub fn scan_until(
        &self,
        args: &[&str],
        what: &str,
        ready: impl Fn(&zombiescan::render::json::Document) -> bool,
    ) -> zombiescan::render::json::Document {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let doc = self.zombiescan_json(args);
            if ready(&doc) {
                return doc;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; findings: {:#?}",
                doc.findings
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn ss(&self, args: &[&str]) -> String {
        let out = self.exec(&[&["ss"], args].concat());
        ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `ss` shows exactly `want`: (kernel state name, count).
    pub fn wait_states(&self, want: &[(&str, u32)]) {
        self.wait_ss(&format!("{want:?}"), |out| {
            let counts = ss_counts(out);
            want.iter()
                .all(|(st, n)| counts.get(*st).copied().unwrap_or(0) == *n)
        });
    }

    /// Polls until `ready` holds for this namespace's `ss -tanH` output.
    pub fn wait_ss(&self, what: &str, ready: impl Fn(&str) -> bool) {
        self.wait_ss_with(&["-tanH"], what, ready);
    }

    /// Polls until `ready` holds for `ss ARGS` in this namespace; a bound
    /// of 30 s for a loaded machine.
    pub fn wait_ss_with(&self, args: &[&str], what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ss(args);
            if ready(&out) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Every process in the namespace, forked workers included.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for h in &mut self.helpers {
            let _ = h.stdin.flush();
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
        for c in &mut self.programs {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Counts per kernel state name in `ss -tanH` output.
pub fn ss_counts(out: &str) -> std::collections::BTreeMap<String, u32> {
    let mut m = std::collections::BTreeMap::new();
    for line in out.lines() {
        if let Some(st) = line.split_whitespace().next() {
            *m.entry(ss_state(st).to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// `ss` spells states its own way; zombiescan uses the kernel's names.
pub fn ss_state(s: &str) -> &str {
    match s {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        other => other,
    }
}

/// A cgroup named like a container's (docker's, or a pod's as kubelet
/// names it), holding test processes; removed (its processes moved back
/// to the root, the directories it made taken away) when dropped.
pub struct FakeContainer {
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
    /// The directories it made, outermost first.
    made: Vec<std::path::PathBuf>,
}

impl FakeContainer {
    /// `None` when no writable cgroup hierarchy is mounted.
    pub fn new(id: &str) -> Option<FakeContainer> {
        FakeContainer::at(&format!("docker/{id}"))
    }

    /// A cgroup at `path` under the first writable hierarchy.
    pub fn at(path: &str) -> Option<FakeContainer> {
        for root in [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ] {
            let root = std::path::PathBuf::from(root);
            if !root.join("cgroup.procs").exists() {
                continue;
            }
            let mut made = Vec::new();
            let mut dir = root.clone();
            let mut ok = true;
            for part in path.split('/') {
                dir.push(part);
                if dir.exists() {
                    continue;
                }
                if std::fs::create_dir(&dir).is_err() {
                    ok = false;
                    break;
                }
                made.push(dir.clone());
            }
            let fake = FakeContainer {
                dir: dir.clone(),
                root,
                made,
            };
            if ok && dir.join("cgroup.procs").exists() {
                return Some(fake);
            }
        }
        None
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        if let Ok(pids) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in pids.lines() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        for dir in self.made.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
