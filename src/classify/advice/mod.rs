//! What each finding says and what to do about it, for the server in front
//! of the reader. Advice that is wrong is worse than none, and what a server
//! does changes with its releases, so the advice is data: `rows.rs` holds
//! [`ADVICE`], one row per server and finding (the cause in that server's
//! terms, the fix naming its settings, and where each claim was checked),
//! and [`SETTINGS`], the settings the rows cite, with their defaults and
//! sources. `server.rs` recognises the server a process runs. The
//! classifier picks the row for the process that holds the sockets, and
//! this module fills each `{--setting}` with the value its command line
//! states, or the default.
//!
//! The explanations (how many, how old, who) are built in `words.rs` from
//! the figures; only the server-specific sentences live in the rows.

mod rows;
mod server;
mod words;

use std::net::{IpAddr, SocketAddr};

use super::Kind;
use crate::model::{Args, Direction, Process, Snapshot, TcpState};

use rows::APP_TIMEOUTS;
pub use rows::{SETTINGS, Setting, Who, host, pick};
use server::Role;
pub use server::{Server, peer_server, well_known};
pub use words::*;

/// A setting's value as the command line states it: `--name V`,
/// `--name=V`, or an alias (`-w 4`, `-w4`).
pub fn stated(cmdline: &[u8], s: &Setting) -> Option<String> {
    let names: Vec<&str> = std::iter::once(s.name)
        .chain(s.aliases.iter().copied())
        .collect();
    Args::new(cmdline).value(&names).map(str::to_string)
}

/// Fills a host row's `{name}`s with the finding's figures.
pub fn figures(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Fills every `{--name}` of `text` with the server's setting: "--backlog 8
/// (its command line)", "--backlog (default 2048)".
pub fn fill(text: &str, server: Option<Server>, cmdlines: &[&[u8]]) -> String {
    let text = text.replace("{APP_TIMEOUTS}", APP_TIMEOUTS);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        let setting = SETTINGS
            .iter()
            .find(|s| Some(s.server) == server.map(Server::settings) && s.name == name);
        out.push_str(&match setting {
            Some(s) => describe(s, cmdlines),
            None => name.to_string(),
        });
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn describe(s: &Setting, cmdlines: &[&[u8]]) -> String {
    if let Some(v) = cmdlines.iter().find_map(|c| stated(c, s)) {
        return format!("{} {v} (its command line)", s.name);
    }
    // A gunicorn config file (-c FILE) may set what the command line does
    // not; python's own -c (a multiprocessing worker's) is no config file.
    let config = s.server == Server::Gunicorn
        && cmdlines.iter().any(|c| {
            let args = Args::new(c);
            args.has("-c") || args.value(&["--config"]).is_some() || args.has("--config")
        });
    match (s.default, config) {
        (Some(d), false) => format!("{} (default {d})", s.name),
        (Some(d), true) => format!("{} (its config file, or the default {d})", s.name),
        (None, false) => format!("{} (not set)", s.name),
        (None, true) => format!("{} (its config file, or not set)", s.name),
    }
}

/// How the sockets of a finding are held.
#[derive(Clone, Debug, Default)]
pub struct Holders {
    /// Pids holding a descriptor of one of the sockets.
    pub pids: Vec<u32>,
    /// Sockets still in a listener's accept queue (no descriptor yet).
    pub queued: u32,
    /// Owners of the listeners those queued sockets wait on.
    pub listener_pids: Vec<u32>,
    /// Sockets with an inode whose holder could not be found.
    pub unknown: u32,
    /// Sockets the kernel holds for no process (closed, inode 0).
    pub orphans: u32,
}

impl Holders {
    /// Every pid concerned: holders and the listeners' owners.
    pub fn all_pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .pids
            .iter()
            .chain(&self.listener_pids)
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Who and where a finding is about, in words.
pub struct Ctx<'a> {
    /// The server the holders (or the listeners' owners) run.
    pub server: Option<Server>,
    /// The server at the remote end of outbound sockets, when known.
    pub peer: Option<Server>,
    /// "uvicorn (pids 12, 13)", "a process that could not be read".
    pub who: String,
    /// The listeners' owners that accept, for queued sockets.
    pub listener_who: String,
    /// A supervisor that holds the listener but never accepts, said apart
    /// ("Its supervisor (pid 12) only holds the listener…").
    pub supervisor: Option<String>,
    /// The pid to look at first: a blamed worker, else the first holder.
    pub first_pid: Option<u32>,
    /// "port 30020", "10.0.0.5:5432".
    pub place: String,
    /// The port the finding is about (local inbound, remote outbound).
    pub port: u16,
    /// `--netns ARG ` to repeat in a command, for another namespace.
    netns_arg: String,
    pub dir: Direction,
    /// `--reload` on a uvicorn command line.
    pub reload: bool,
    pub holders: Holders,
    /// For a forwarder's sockets: where it forwards the port, in words
    /// ("port 30020 to 172.17.0.2:30020 in netns … (docker … web)").
    pub forwards_to: Option<String>,
    cmdlines: Vec<&'a [u8]>,
    snap: &'a Snapshot,
}

fn list(v: &[u32]) -> String {
    let mut s: Vec<String> = v.iter().take(5).map(u32::to_string).collect();
    if v.len() > 5 {
        s.push(format!("and {} more", v.len() - 5));
    }
    s.join(", ")
}

/// The processes `pids` in words: "uvicorn (pid 12)", "python3 (uvicorn)
/// (pids 12, 13)"; a server's tree by its roles: "uvicorn (workers, pids
/// 13, 14; supervisor, pid 12)".
pub(super) fn named(snap: &Snapshot, pids: &[u32]) -> Option<String> {
    let procs: Vec<&Process> = pids.iter().filter_map(|p| snap.processes.get(p)).collect();
    let first = procs.first()?;
    let roles = server::roles(snap, pids);
    let workers: Vec<u32> = roles
        .iter()
        .filter(|(_, r)| matches!(r, Role::Worker(..)))
        .map(|(p, _)| *p)
        .collect();
    let tree = roles.iter().find_map(|(_, r)| match r {
        Role::Worker(s, _) | Role::Supervisor(s) => Some(*s),
        Role::Alone => None,
    });
    if let Some(s) = tree {
        let supervisors: Vec<u32> = roles
            .iter()
            .filter(|(_, r)| matches!(r, Role::Supervisor(_)))
            .map(|(p, _)| *p)
            .collect();
        let others: Vec<u32> = roles
            .iter()
            .filter(|(_, r)| *r == Role::Alone)
            .map(|(p, _)| *p)
            .collect();
        let mut parts = Vec::new();
        let one = |what: &str, many: &str, v: &[u32]| match v {
            [] => None,
            [p] => Some(format!("{what}, pid {p}")),
            v => Some(format!("{many}, pids {}", list(v))),
        };
        parts.extend(one("worker", "workers", &workers));
        let word = s.supervisor();
        parts.extend(one(word, &format!("{word}s"), &supervisors));
        parts.extend(one("process", "processes", &others));
        return Some(format!("{} ({})", s.name(), parts.join("; ")));
    }
    let name = String::from_utf8_lossy(&first.comm).into_owned();
    let name = match procs.iter().find_map(|p| Server::detect(p)) {
        Some(s) if s.name() != name => format!("{name} ({})", s.name()),
        _ => name,
    };
    Some(match pids.len() {
        1 => format!("{name} (pid {})", pids[0]),
        _ => format!("{name} (pids {})", list(pids)),
    })
}

/// Of the owners of a listener, those that accept: a supervisor that only
/// holds the listener for its workers (uvicorn's, gunicorn's, nginx's
/// master) is left out when its workers are there, and said apart.
fn accepters(snap: &Snapshot, pids: &[u32]) -> (Vec<u32>, Option<String>) {
    let roles = server::roles(snap, pids);
    let idle: Vec<(u32, Server)> = roles
        .iter()
        .filter_map(|(p, r)| match r {
            Role::Supervisor(s) if !s.supervisor_accepts() => Some((*p, *s)),
            _ => None,
        })
        .collect();
    let Some(&(sup, s)) = idle.first() else {
        return (pids.to_vec(), None);
    };
    let mut blamed: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !idle.iter().any(|(i, _)| i == p))
        .collect();
    // A supervisor alone on the listener: its workers, wherever they are
    // in the snapshot, are the ones that should accept.
    for &(i, s) in &idle {
        if !roles
            .iter()
            .any(|(_, r)| matches!(r, Role::Worker(_, of) if *of == i))
        {
            blamed.extend(
                snap.processes
                    .values()
                    .filter(|c| c.ppid == Some(i) && Server::detect(c) == Some(s))
                    .map(|c| c.pid),
            );
        }
    }
    blamed.sort_unstable();
    blamed.dedup();
    let note = format!(
        "Its {} (pid {sup}) only holds the listener and restarts workers: {}'s workers are the ones that \
         accept.",
        s.supervisor(),
        s.name()
    );
    (blamed, Some(note))
}

impl<'a> Ctx<'a> {
    pub fn new(
        snap: &'a Snapshot,
        holders: Holders,
        dir: Direction,
        remote: Option<IpAddr>,
        port: u16,
    ) -> Ctx<'a> {
        // The peer of outbound sockets is set by the caller, who knows the
        // listeners.
        let all = holders.all_pids();
        let procs: Vec<&Process> = all.iter().filter_map(|p| snap.processes.get(p)).collect();
        let server = procs.iter().find_map(|p| Server::detect(p));
        // Settings are read from the holders' command lines and their
        // supervisors': a worker's says nothing of --backlog.
        let mut cmdlines: Vec<&[u8]> = procs.iter().map(|p| p.cmdline.as_slice()).collect();
        for p in &procs {
            if let Some(c) = &p.parent_cmdline {
                cmdlines.push(c);
            }
            if let Some(parent) = p.ppid.and_then(|pp| snap.processes.get(&pp))
                && Server::detect(parent) == Server::detect(p)
            {
                cmdlines.push(&parent.cmdline);
            }
        }
        let reload = cmdlines.iter().any(|c| Args::new(c).has("--reload"));
        let (blamed, supervisor) = accepters(snap, &holders.pids);
        let (listener_blamed, listener_supervisor) = accepters(snap, &holders.listener_pids);
        let first_pid = blamed.first().or(listener_blamed.first()).copied();
        let supervisor = supervisor.or(listener_supervisor);
        let mut who: Vec<String> = named(snap, &blamed).into_iter().collect();
        if holders.unknown > 0 {
            who.push(if snap.gaps.as_root {
                "a process that could not be read".to_string()
            } else {
                "a process zombiescan could not read (run as root to see it)".to_string()
            });
        }
        if holders.orphans > 0 {
            who.push(
                "no process (orphaned: closed by their process, held by the kernel)".to_string(),
            );
        }
        let listener_who = named(snap, &listener_blamed).unwrap_or_else(|| {
            let listening = snap
                .sockets
                .iter()
                .any(|s| s.state == TcpState::Listen && s.local.port() == port);
            match (listening, snap.gaps.as_root) {
                (false, _) => "its listener (not part of this scan)",
                (true, true) => "its listener's process, which could not be read",
                (true, false) => "its listener's process (run as root to see it)",
            }
            .to_string()
        });
        if who.is_empty() && holders.queued > 0 {
            who.push(listener_who.clone());
        }
        // Never a sentence without its subject: an owner that could not be
        // read is said to be one.
        if who.is_empty() {
            who.push(if snap.gaps.as_root {
                "a process zombiescan could not find (it may have exited)".to_string()
            } else {
                "a process zombiescan could not read (run as root to see it)".to_string()
            });
        }
        let place = match remote {
            Some(ip) => SocketAddr::new(ip, port).to_string(),
            None => format!("port {port}"),
        };
        Ctx {
            server,
            peer: None,
            who: who.join(" and "),
            listener_who,
            supervisor,
            first_pid,
            place,
            port,
            netns_arg: match (&snap.netns.enter, snap.netns.own) {
                (Some(e), false) => format!("--netns {e} "),
                _ => String::new(),
            },
            dir,
            reload,
            holders,
            forwards_to: None,
            cmdlines,
            snap,
        }
    }

    /// Whether zombiescan runs as root: advice it cannot carry out
    /// otherwise says so.
    pub fn as_root(&self) -> bool {
        self.snap.gaps.as_root
    }

    /// The processes `pids` in words: "nginx (pids 10, 11)".
    pub fn name_of(&self, pids: &[u32]) -> String {
        named(self.snap, pids).unwrap_or_else(|| format!("pids {}", list(pids)))
    }

    fn conns(&self, n: u32) -> String {
        let c = if n == 1 { "connection" } else { "connections" };
        match self.dir {
            Direction::Inbound => format!("{n} {c} on {}", self.place),
            Direction::Outbound => format!("{n} {c} to {}", self.place),
        }
    }

    /// The row's cause and fix, filled with this server's settings.
    fn advice(&self, kind: Kind) -> (String, String) {
        let row = pick(kind, self.dir, self.server, self.peer);
        let pid = self.first_pid.map_or("PID".to_string(), |p| p.to_string());
        let fill = |t: &str| fill(&t.replace("{pid}", &pid), self.server, &self.cmdlines);
        (fill(row.cause), fill(row.fix))
    }
}

#[cfg(test)]
mod tests {
    use super::rows::ADVICE;
    use super::*;
    use crate::testing::process;

    #[test]
    fn servers_by_comm_and_command_line() {
        let d = |comm, cmd| Server::detect(&process(1, comm, cmd, 1, None));
        assert_eq!(
            d("python3", "/usr/bin/python3 -m uvicorn app:app"),
            Some(Server::Uvicorn)
        );
        assert_eq!(
            d("uvicorn", "/venv/bin/uvicorn app:app --port 30020"),
            Some(Server::Uvicorn)
        );
        assert_eq!(
            d(
                "gunicorn",
                "/venv/bin/gunicorn -k uvicorn.workers.UvicornWorker app:app"
            ),
            Some(Server::UvicornWorker),
            "gunicorn's master and settings, uvicorn's event loops"
        );
        assert_eq!(
            d("gunicorn", "/venv/bin/gunicorn -w 2 app:wsgi"),
            Some(Server::Gunicorn)
        );
        assert_eq!(
            d("python3", "gunicorn: worker [app:app]"),
            Some(Server::Gunicorn)
        );
        assert_eq!(d("nginx", "nginx: worker process"), Some(Server::Nginx));
        assert_eq!(d("node", "node server.js"), Some(Server::Node));
        assert_eq!(d("java", "java -jar app.jar"), Some(Server::Java));
        assert_eq!(
            d("docker-proxy", "/usr/bin/docker-proxy -proto tcp"),
            Some(Server::DockerProxy)
        );
        assert_eq!(
            d("postgres", "postgres: app app 10.0.0.1(5000) idle"),
            Some(Server::Postgres)
        );
        assert_eq!(d("python3", "python3 uvicorn_helper.py"), None);
    }

    /// Every row: a source, a fix, a real server setting behind every
    /// placeholder, and at most one row per server, finding and direction.
    #[test]
    fn every_row_of_advice_is_complete_and_resolves() {
        for r in ADVICE {
            let at = format!("{:?} {:?} {:?}", r.who, r.kind, r.dir);
            assert!(!r.checked.is_empty(), "{at}: where was it checked?");
            assert!(!r.fix.is_empty(), "{at}: no fix");
            // Each cause is a sentence of its own; server names keep their
            // lower case.
            assert!(
                r.cause.is_empty()
                    || r.cause.starts_with(|c: char| c.is_uppercase())
                    || ["uvicorn ", "gunicorn", "nginx ", "docker-proxy "]
                        .iter()
                        .any(|n| r.cause.starts_with(n)),
                "{at}: {}",
                r.cause
            );
            let server = match r.who {
                Who::Holder(s) | Who::Peer(s) => Some(s),
                Who::Any | Who::Host => None,
            };
            for text in [r.cause, r.fix] {
                let filled = if r.who == Who::Host {
                    // The figures words.rs gives a host row.
                    let known: Vec<(&str, &str)> = [
                        "peer",
                        "tcp_fin_timeout",
                        "tcp_syncookies",
                        "tcp_max_syn_backlog",
                        "ip_local_port_range",
                    ]
                    .map(|k| (k, "x"))
                    .to_vec();
                    figures(text, &known)
                } else {
                    fill(text, server, &[])
                };
                assert!(
                    !filled.contains('{') && !filled.contains('}'),
                    "{at}: a placeholder names no setting of {server:?}: {filled}"
                );
            }
            let same = ADVICE
                .iter()
                .filter(|o| o.who == r.who && o.kind == r.kind && o.dir == r.dir)
                .count();
            assert_eq!(same, 1, "{at}: one row each");
        }
        // Every finding about sockets has generic advice in both directions.
        for kind in [
            Kind::CloseWait,
            Kind::FinWait2,
            Kind::HalfOpen,
            Kind::PeerNotReading,
            Kind::AppNotReading,
            Kind::IdleNoKeepalive,
            Kind::AcceptQueueFull,
            Kind::FdExhaustion,
        ] {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let r = pick(kind, dir, None, None);
                assert!(r.who == Who::Any && r.kind == kind, "{kind:?} {dir:?}");
            }
        }
        for s in SETTINGS {
            assert!(s.name.starts_with("--") && !s.checked.is_empty());
        }
        // Host-wide findings and orphans have the kernel's row.
        for kind in [
            Kind::FinWait2,
            Kind::SynBacklog,
            Kind::FdExhaustion,
            Kind::EphemeralPortExhaustion,
            Kind::TimeWaitPressure,
            Kind::OrphanPressure,
        ] {
            let r = host(kind);
            assert!(r.who == Who::Host && r.kind == kind, "{kind:?}");
        }
    }

    #[test]
    fn settings_come_from_the_command_line_or_say_their_default() {
        let g: &[u8] = b"/venv/bin/python3 /venv/bin/gunicorn -w 2 --backlog=8 -t120 app:app";
        assert_eq!(
            fill(
                "{--workers}, {--backlog}, {--timeout}, {--threads}",
                Some(Server::Gunicorn),
                &[g]
            ),
            "--workers 2 (its command line), --backlog 8 (its command line), \
             --timeout 120 (its command line), --threads (default 1)"
        );
        let c: &[u8] = b"gunicorn -c gunicorn.conf.py app:app";
        assert_eq!(
            fill("{--timeout}", Some(Server::Gunicorn), &[c]),
            "--timeout (its config file, or the default 30 s)"
        );
        let u: &[u8] = b"python3 -m uvicorn app:app --limit-concurrency 50";
        assert_eq!(
            fill(
                "{--limit-concurrency} {--backlog}",
                Some(Server::Uvicorn),
                &[u]
            ),
            "--limit-concurrency 50 (its command line) --backlog (default 2048)"
        );
        // A word that only starts like a flag is not that flag.
        let w: &[u8] = b"gunicorn --workers-tmp-dir /dev/shm app:app";
        assert_eq!(
            fill("{--workers}", Some(Server::Gunicorn), &[w]),
            "--workers (default 1)"
        ); // python's own -c (a multiprocessing worker's) is no config file.
        let mp: &[u8] = b"python3 -B -c from multiprocessing.spawn import spawn_main; \
            spawn_main(tracker_fd=7, pipe_handle=9) --multiprocessing-fork";
        assert_eq!(
            fill("{--limit-concurrency}", Some(Server::Uvicorn), &[mp]),
            "--limit-concurrency (not set)"
        );
    }

    /// Process trees: the supervisor that only holds the listener is said
    /// apart from the workers that accept (uvicorn, gunicorn, nginx); node's
    /// cluster primary accepts itself and stays blamed.
    #[test]
    fn workers_are_blamed_and_the_supervisor_said_apart() {
        use crate::testing::snapshot;
        let tree = |procs: Vec<crate::model::Process>| {
            let mut snap = snapshot(Vec::new());
            snap.processes.clear();
            for p in procs {
                snap.processes.insert(p.pid, p);
            }
            snap
        };
        let child = |mut p: crate::model::Process, ppid: u32, parent: Option<&str>| {
            p.ppid = Some(ppid);
            p.parent_cmdline = parent.map(|c| c.as_bytes().to_vec());
            p
        };
        let uv = "/venv/bin/python3 /venv/bin/uvicorn app:app --workers 2 --backlog 16";
        let mp = "/venv/bin/python3 -B -c from multiprocessing.spawn import spawn_main; \
                  spawn_main(tracker_fd=7, pipe_handle=9) --multiprocessing-fork";
        let snap = tree(vec![
            process(10, "uvicorn", uv, 8, None),
            child(process(11, "python3", mp, 9, None), 10, Some(uv)),
            child(process(12, "python3", mp, 9, None), 10, Some(uv)),
        ]);
        assert_eq!(
            named(&snap, &[10, 11, 12]).as_deref(),
            Some("uvicorn (workers, pids 11, 12; supervisor, pid 10)")
        );
        let (blamed, note) = accepters(&snap, &[10, 11, 12]);
        assert_eq!(blamed, vec![11, 12]);
        assert!(note.is_some_and(|n| n.starts_with("Its supervisor (pid 10)")));
        // The settings come from the supervisor's command line.
        let c = Ctx::new(
            &snap,
            Holders {
                pids: vec![11, 12],
                ..Holders::default()
            },
            Direction::Inbound,
            None,
            30020,
        );
        assert_eq!(c.server, Some(Server::Uvicorn));
        assert_eq!(c.first_pid, Some(11));
        assert!(
            c.advice(Kind::AcceptQueueFull)
                .1
                .contains("--backlog 16 (its command line)")
        );

        let master = "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf";
        let snap = tree(vec![
            process(20, "nginx", master, 8, None),
            child(
                process(21, "nginx", "nginx: worker process", 9, None),
                20,
                None,
            ),
        ]);
        assert_eq!(accepters(&snap, &[20, 21]).0, vec![21]);
        assert_eq!(
            named(&snap, &[20, 21]).as_deref(),
            Some("nginx (worker, pid 21; master, pid 20)")
        );
        // node's primary accepts and hands connections out: it stays.
        let snap = tree(vec![
            process(30, "node", "node server.js", 8, None),
            child(process(31, "node", "node server.js", 9, None), 30, None),
        ]);
        let (blamed, note) = accepters(&snap, &[30]);
        assert_eq!((blamed, note), (vec![30], None));
        assert_eq!(
            named(&snap, &[30, 31]).as_deref(),
            Some("node (worker, pid 31; primary, pid 30)")
        );
    }
}
