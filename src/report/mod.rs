//! Grouping and totals shared by every renderer: the summary, the per-port
//! and per-process tables, and the limitations in plain sentences.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub mod kill;
pub mod timeline;
pub mod watch;

use crate::classify::{self, Finding, KindSet};
use crate::model::{
    Direction, Family, Process, Snapshot, Socket, StateCounts, TcpState, UnixLink, UnixSocket,
    direction,
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: u32,
    pub by_state: StateCounts,
    pub ipv4: u32,
    pub ipv6: u32,
    /// Unix stream and seqpacket sockets, and how many listen (not in
    /// `total`, which counts TCP sockets as `ss -t` does).
    pub unix: u32,
    pub unix_listeners: u32,
}

impl Summary {
    /// Counts `n` TCP sockets in `state` of `family`.
    fn add(&mut self, state: TcpState, family: Family, n: u32) {
        self.total += n;
        self.by_state.add_n(state, n);
        match family {
            Family::Ipv4 => self.ipv4 += n,
            Family::Ipv6 => self.ipv6 += n,
        }
    }
}

/// A unix listener and its connections: a port's counterpart.
#[derive(Clone, Debug)]
pub struct UnixGroup<'a> {
    /// Its index in `Snapshot::unix`.
    pub index: usize,
    pub listener: &'a UnixSocket,
    /// Its name as `ss` writes it (bytes from outside).
    pub path: Vec<u8>,
    /// Connections waiting to be accepted, and the backlog; `None` when
    /// the source shows no queues.
    pub queue: Option<(u32, u32)>,
    /// Connections it accepted (server ends with its name).
    pub accepted: u32,
    pub pids: Vec<u32>,
    /// The scanned ports that pass to it.
    pub behind: Vec<&'a UnixLink>,
    /// The findings it is part of.
    pub kinds: KindSet,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortGroup {
    pub direction: Direction,
    /// Local port for inbound, remote port for outbound.
    pub port: u16,
    /// The remote address, for outbound groups.
    pub remote: Option<IpAddr>,
    /// An inbound group whose port has a listener in the snapshot.
    pub listening: bool,
    pub by_state: StateCounts,
    pub recv_q: u64,
    pub send_q: u64,
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct ProcessRow<'a> {
    pub process: &'a Process,
    /// TCP sockets, and their states.
    pub sockets: u32,
    pub by_state: StateCounts,
    /// Unix sockets of the report's unix groups.
    pub unix: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// List every socket in full, not only the flagged ones.
    pub all_sockets: bool,
    /// The order of the listed sockets.
    pub sort: SortBy,
}

/// A socket listed in full, as [`Report::listed`] gives it, with the
/// facts every renderer shows.
#[derive(Clone, Copy, Debug)]
pub struct Listed<'a> {
    /// Its index in the snapshot.
    pub index: usize,
    pub socket: &'a Socket,
    pub direction: Direction,
    /// The findings it is part of.
    pub kinds: KindSet,
    /// The oldest age its findings quote, else the kernel's age of its
    /// state (ms).
    pub age_ms: Option<u32>,
}

/// The order of the listed sockets (`--sort`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    #[default]
    Severity,
    Age,
    Queue,
    Pid,
    Remote,
}

/// The one input every renderer takes.
#[derive(Debug)]
pub struct Report<'a> {
    pub snapshot: &'a Snapshot,
    pub summary: Summary,
    pub ports: Vec<PortGroup>,
    pub processes: Vec<ProcessRow<'a>>,
    /// The unix listeners worth showing: with a queue, a finding, or
    /// asked for (`--path`, or behind a scanned port); most queued first.
    pub unix: Vec<UnixGroup<'a>>,
    /// Sockets with an inode whose owner was not found.
    pub unowned: u32,
    pub limitations: Vec<String>,
    /// Where to look besides: the snapshot's hints (another namespace),
    /// then trouble on other ports of this one ([`crate::classify::pointers`]).
    pub hints: Vec<String>,
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// The kinds of finding each socket is part of, by index in
    /// `snapshot.sockets` (empty when nothing is flagged).
    flags: Vec<KindSet>,
    /// `--sockets`: every socket is listed, not only the flagged ones.
    pub all_sockets: bool,
    /// `--sort`: the order of the listed sockets.
    pub sort: SortBy,
    /// `--watch`: what changed since the previous sample and the first.
    pub watch: Option<watch::View>,
    /// The listed sockets, worked out the first time a renderer asks
    /// (JSON and Prometheus never do).
    listed: OnceCell<Vec<Listed<'a>>>,
}

impl<'a> Report<'a> {
    /// The states that occur in the report, in kernel order: the columns a
    /// table shows.
    pub fn states_present(&self) -> Vec<TcpState> {
        TcpState::ALL
            .into_iter()
            .filter(|&s| self.summary.by_state.get(s) > 0)
            .collect()
    }

    /// The sockets listed in full: the flagged ones, or all with
    /// `--sockets`, each with the kinds of finding it is part of.
    pub fn sockets(&self) -> impl Iterator<Item = Listed<'a>> + '_ {
        let snap = self.snapshot;
        let listening = snap.listening_ports();
        let ephemeral = snap.host.ephemeral_range();
        snap.sockets.iter().enumerate().filter_map(move |(i, s)| {
            let kinds = self.kinds_of(i);
            (self.all_sockets || !kinds.is_empty()).then(|| Listed {
                index: i,
                socket: s,
                direction: direction(s, &listening, ephemeral),
                kinds,
                age_ms: classify::age_of(kinds.iter(), s, &snap.host),
            })
        })
    }

    /// The sockets listed in full (the flagged ones, or all with
    /// `--sockets`), in the `--sort` order; by default worst first: by the
    /// most severe finding a socket is in, the finding, then the oldest.
    pub fn listed(&self) -> &[Listed<'a>] {
        self.listed.get_or_init(|| self.list())
    }

    fn list(&self) -> Vec<Listed<'a>> {
        let snap = self.snapshot;
        let mut rank: HashMap<usize, (classify::Severity, usize)> = HashMap::new();
        for f in &self.findings {
            let k = classify::Kind::ALL
                .iter()
                .position(|k| *k == f.kind)
                .unwrap_or(usize::MAX);
            for &i in &f.sockets {
                let e = rank.entry(i as usize).or_insert((f.severity, k));
                if (f.severity, std::cmp::Reverse(k)) > (e.0, std::cmp::Reverse(e.1)) {
                    *e = (f.severity, k);
                }
            }
        }
        let mut listed: Vec<Listed> = self.sockets().collect();
        let severity = |a: &Listed, b: &Listed| {
            let ra = rank.get(&a.index).copied();
            let rb = rank.get(&b.index).copied();
            rb.map(|r| r.0)
                .cmp(&ra.map(|r| r.0))
                .then(ra.map(|r| r.1).cmp(&rb.map(|r| r.1)))
                .then(b.age_ms.cmp(&a.age_ms))
        };
        let queued = |l: &Listed| u64::from(l.socket.recv_q) + u64::from(l.socket.send_q);
        let pid = |l: &Listed| snap.owners_of(l.socket).first().copied();
        listed.sort_by(|a, b| {
            match self.sort {
                SortBy::Severity => severity(a, b),
                SortBy::Age => b.age_ms.cmp(&a.age_ms),
                SortBy::Queue => queued(b).cmp(&queued(a)),
                SortBy::Pid => pid(a).cmp(&pid(b)),
                SortBy::Remote => a.socket.remote.cmp(&b.socket.remote),
            }
            .then(a.index.cmp(&b.index))
        });
        listed
    }

    /// The unix sockets listed in full: those a finding is about, or all
    /// with `--sockets`, in the snapshot's order, each with its kinds.
    pub fn unix_sockets(&self) -> impl Iterator<Item = (&'a UnixSocket, KindSet)> + '_ {
        self.unix_sockets_all()
            .filter(|(_, kinds)| self.all_sockets || !kinds.is_empty())
    }

    /// Every unix socket, with its kinds.
    pub fn unix_sockets_all(&self) -> impl Iterator<Item = (&'a UnixSocket, KindSet)> + '_ {
        self.snapshot.unix.iter().enumerate().map(|(i, u)| {
            let mut kinds = KindSet::default();
            for f in self
                .findings
                .iter()
                .filter(|f| f.unix.contains(&(i as u32)))
            {
                kinds.insert(f.kind);
            }
            (u, kinds)
        })
    }

    /// The kinds of finding socket `i` of the snapshot is part of.
    pub fn kinds_of(&self, i: usize) -> KindSet {
        self.flags.get(i).copied().unwrap_or_default()
    }

    pub fn new(snap: &'a Snapshot, findings: Vec<Finding>, opts: &Options) -> Report<'a> {
        let mut summary = Summary::default();
        let listening = snap.listening_ports();
        let ephemeral = snap.host.ephemeral_range();
        let mut groups: BTreeMap<(Direction, Option<IpAddr>, u16), PortGroup> = BTreeMap::new();
        let mut per_pid: crate::model::FastMap<u32, (u32, StateCounts)> = Default::default();
        let mut unowned = 0;
        let new_group = |(direction, remote, port): (Direction, Option<IpAddr>, u16)| PortGroup {
            direction,
            port,
            remote,
            listening: direction == Direction::Inbound && listening.contains(&port),
            by_state: StateCounts::default(),
            recv_q: 0,
            send_q: 0,
            pids: Vec::new(),
        };
        // Each socket kept: its state, family, group and queues, and its
        // owners.
        for s in &snap.sockets {
            summary.add(s.state, s.family, 1);
            let dir = direction(s, &listening, ephemeral);
            let key = match dir {
                Direction::Inbound => (dir, None, s.local.port()),
                Direction::Outbound => (dir, Some(s.remote.ip()), s.remote.port()),
            };
            let g = groups.entry(key).or_insert_with(|| new_group(key));
            g.by_state.add(s.state);
            // A listener's Send-Q is its backlog limit, not queued bytes.
            if s.state != TcpState::Listen {
                g.recv_q += u64::from(s.recv_q);
                g.send_q += u64::from(s.send_q);
            }
            let owners = snap.owners_of(s);
            if s.inode != 0 && owners.is_empty() {
                unowned += 1;
            }
            for &pid in owners {
                if !g.pids.contains(&pid) {
                    g.pids.push(pid);
                }
                let e = per_pid.entry(pid).or_default();
                e.0 += 1;
                e.1.add(s.state);
            }
        }
        // The folded sockets, counted by their group, each group then
        // counted once: all ESTABLISHED, queues empty.
        let folded = snap.folded_by_group(
            |_| true,
            |owners| {
                if owners.is_empty() {
                    unowned += 1;
                }
                for &pid in owners {
                    let e = per_pid.entry(pid).or_default();
                    e.0 += 1;
                    e.1.add(TcpState::Established);
                }
            },
        );
        for (g, (n, pids)) in snap.folded.groups.iter().zip(folded) {
            if n == 0 {
                continue;
            }
            summary.add(TcpState::Established, g.family, n);
            let key = (g.direction, g.remote, g.port);
            let pg = groups.entry(key).or_insert_with(|| new_group(key));
            pg.by_state.add_n(TcpState::Established, n);
            for pid in pids {
                if !pg.pids.contains(&pid) {
                    pg.pids.push(pid);
                }
            }
        }
        let mut ports: Vec<PortGroup> = groups.into_values().collect();
        for g in &mut ports {
            g.pids.sort_unstable();
        }
        ports.sort_by(|a, b| {
            (
                a.direction,
                std::cmp::Reverse(a.by_state.total()),
                a.port,
                a.remote,
            )
                .cmp(&(
                    b.direction,
                    std::cmp::Reverse(b.by_state.total()),
                    b.port,
                    b.remote,
                ))
        });
        let unix = unix_groups(snap, &findings);
        let mut per_pid_unix: HashMap<u32, u32> = HashMap::new();
        for g in &unix {
            for u in snap.unix.iter().filter(|u| u.name == g.listener.name) {
                for &pid in snap.unix_owners(u) {
                    *per_pid_unix.entry(pid).or_default() += 1;
                }
            }
        }
        for u in &snap.unix {
            summary.unix += 1;
            if u.state == TcpState::Listen {
                summary.unix_listeners += 1;
            }
        }
        // The processes with TCP sockets, those of the unix groups shown
        // and those a finding names: not every daemon with a socket to the
        // journal.
        let named: std::collections::BTreeSet<u32> = findings
            .iter()
            .flat_map(|f| f.pids.iter().copied())
            .collect();
        let unix_holders: std::collections::BTreeSet<u32> = snap
            .unix
            .iter()
            .flat_map(|u| snap.unix_owners(u).iter().copied())
            .collect();
        let mut processes: Vec<ProcessRow> = snap
            .processes
            .values()
            .filter(|p| {
                per_pid.contains_key(&p.pid)
                    || per_pid_unix.contains_key(&p.pid)
                    || named.contains(&p.pid)
                    || !unix_holders.contains(&p.pid)
            })
            .map(|p| {
                let (sockets, by_state) = per_pid.get(&p.pid).copied().unwrap_or_default();
                ProcessRow {
                    process: p,
                    sockets,
                    by_state,
                    unix: per_pid_unix.get(&p.pid).copied().unwrap_or_default(),
                }
            })
            .collect();
        processes.sort_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then(a.process.pid.cmp(&b.process.pid))
        });
        let mut flags = Vec::new();
        if findings.iter().any(|f| !f.sockets.is_empty()) {
            flags = vec![KindSet::default(); snap.sockets.len()];
            for f in &findings {
                for &i in &f.sockets {
                    if let Some(k) = flags.get_mut(i as usize) {
                        k.insert(f.kind);
                    }
                }
            }
        }
        let mut limitations = limitations(snap, if snap.owners_walked { unowned } else { 0 });
        limitations.extend(classify::unchecked(snap).map(String::from));
        Report {
            snapshot: snap,
            summary,
            ports,
            processes,
            unix,
            unowned,
            limitations,
            hints: snap.hints.iter().map(classify::hint).collect(),
            findings,
            flags,
            all_sockets: opts.all_sockets,
            sort: opts.sort,
            watch: None,
            listed: OnceCell::new(),
        }
    }
}

/// The unix listeners a report shows, with their connections and owners.
fn unix_groups<'a>(snap: &'a Snapshot, findings: &[Finding]) -> Vec<UnixGroup<'a>> {
    let asked = !snap.filter.paths.is_empty() || !snap.filter.ports.is_empty();
    let mut groups: Vec<UnixGroup> = snap
        .unix
        .iter()
        .enumerate()
        .filter(|(_, u)| u.state == TcpState::Listen)
        .map(|(i, u)| {
            let mut kinds = KindSet::default();
            for f in findings.iter().filter(|f| f.unix.contains(&(i as u32))) {
                kinds.insert(f.kind);
            }
            let mut pids = snap.unix_owners(u).to_vec();
            pids.sort_unstable();
            UnixGroup {
                index: i,
                listener: u,
                path: u.path(),
                queue: u.queues.then_some((u.recv_q, u.send_q)),
                accepted: snap
                    .unix
                    .iter()
                    .filter(|s| s.state != TcpState::Listen && s.name == u.name)
                    .count() as u32,
                pids,
                behind: snap
                    .unix_links
                    .iter()
                    .filter(|l| l.name == u.name)
                    .collect(),
                kinds,
            }
        })
        .filter(|g| asked || !g.kinds.is_empty() || g.queue.is_some_and(|(q, _)| q > 0))
        .collect();
    groups.sort_by(|a, b| {
        let q = |g: &UnixGroup| g.queue.map_or(0, |(q, _)| q);
        q(b).cmp(&q(a)).then(a.path.cmp(&b.path))
    });
    groups
}

fn limitations(snap: &Snapshot, unowned: u32) -> Vec<String> {
    let g = &snap.gaps;
    let mut out = Vec::new();
    if !snap.owners_walked {
        out.push("--no-processes: socket owners were not looked up".to_string());
    }
    if g.processes_out_of_fds > 0 {
        out.push(format!(
            "zombiescan ran out of file descriptors (EMFILE): {} not read; raise its limit (ulimit -n)",
            if g.processes_out_of_fds == 1 {
                "1 process was".to_string()
            } else {
                format!("{} processes were", g.processes_out_of_fds)
            }
        ));
    }
    let n = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    // A process that exited during the walk matters only when a socket
    // went without an owner: it may have been that socket's owner.
    let exited = if g.processes_vanished > 0 {
        format!(
            "; {} during the walk",
            n(g.processes_vanished, "process exited", "processes exited")
        )
    } else {
        String::new()
    };
    let unreadable = n(
        g.processes_unreadable,
        "process could not be read",
        "processes could not be read",
    );
    if unowned > 0 && g.processes_out_of_fds > 0 {
        out.push(format!(
            "{}: their owners may be among the processes zombiescan had no descriptor left to read{exited}",
            n(unowned, "socket has no known owner", "sockets have no known owner")
        ));
    } else if unowned > 0 && g.processes_unreadable > 0 && !g.as_root {
        out.push(format!(
            "{}: {unreadable} (run as root to see every owner){exited}",
            n(
                unowned,
                "socket has no known owner",
                "sockets have no known owner"
            )
        ));
    } else if unowned > 0 && g.processes_unreadable > 0 {
        out.push(format!(
            "{}: closed between the socket dump and the process walk, or held by {} \
             (denied even to root, by a security module or a user namespace){exited}",
            n(
                unowned,
                "socket has no known owner",
                "sockets have no known owner"
            ),
            if g.processes_unreadable == 1 {
                "the one process that could not be read".to_string()
            } else {
                format!(
                    "one of the {} processes that could not be read",
                    g.processes_unreadable
                )
            }
        ));
    } else if unowned > 0 {
        out.push(format!(
            "{}: closed between the socket dump and the process walk{exited}",
            n(
                unowned,
                "socket has no known owner",
                "sockets have no known owner"
            )
        ));
    } else if g.processes_unreadable > 0
        && !(snap.filter.pids.is_empty() && snap.filter.processes.is_empty())
    {
        let why = if g.as_root {
            "denied even to root, by a security module or a user namespace"
        } else {
            "run as root to see every owner"
        };
        out.push(format!(
            "{unreadable} ({why}): sockets they hold are not listed"
        ));
    }
    out.extend(g.notes.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{silent, snapshot, sock};

    fn notes(snap: &Snapshot) -> Vec<String> {
        Report::new(snap, Vec::new(), &Options::default()).limitations
    }

    #[test]
    fn a_process_that_exited_matters_only_when_a_socket_lost_its_owner() {
        let owned = sock(TcpState::Established, "10.0.0.1:30020", "10.0.0.9:4000", 7);
        let mut snap = snapshot(vec![owned.clone()]);
        snap.gaps.processes_vanished = 1;
        snap.gaps.as_root = true;
        assert!(notes(&snap).is_empty(), "{:?}", notes(&snap));

        let mut lost = owned;
        lost.inode = 8;
        let mut snap = snapshot(vec![lost]);
        snap.sockets[0].owner = 0;
        snap.gaps.processes_vanished = 1;
        snap.gaps.as_root = true;
        assert_eq!(
            notes(&snap),
            vec![
                "1 socket has no known owner: closed between the socket dump and the process walk; \
                 1 process exited during the walk"
            ]
        );
        snap.gaps.as_root = false;
        snap.gaps.processes_unreadable = 3;
        assert!(notes(&snap)[0].contains("3 processes could not be read (run as root"));
        // As root: which of the unreadable could hold it, in plain words.
        snap.gaps.as_root = true;
        assert!(
            notes(&snap)[0].contains("or held by one of the 3 processes that could not be read")
        );
        snap.gaps.processes_unreadable = 1;
        assert!(notes(&snap)[0].contains("or held by the one process that could not be read"));
    }

    /// zombiescan out of descriptors is its own doing: said so, with the
    /// remedy, and the sockets it could not attribute are not blamed on
    /// the processes.
    #[test]
    fn out_of_descriptors_is_said_as_such() {
        let lost = sock(TcpState::Established, "10.0.0.1:30020", "10.0.0.9:4000", 8);
        let mut snap = snapshot(vec![lost]);
        snap.sockets[0].owner = 0;
        snap.gaps.as_root = true;
        snap.gaps.processes_unreadable = 1;
        snap.gaps.processes_out_of_fds = 36;
        let n = notes(&snap);
        assert_eq!(
            n[0],
            "zombiescan ran out of file descriptors (EMFILE): 36 processes were not read; raise its \
             limit (ulimit -n)"
        );
        assert!(n[1].contains("had no descriptor left to read"), "{n:?}");
        assert!(!n.iter().any(|l| l.contains("security module")), "{n:?}");
    }

    /// --sort orders the listed sockets: the worst first by default, or by
    /// age, queue, pid or peer.
    #[test]
    fn sockets_are_listed_in_the_order_asked() {
        use crate::classify::{Thresholds, classify};
        let aged = |port: u16, age: u32, q: u32| {
            let mut s = silent(
                sock(
                    TcpState::CloseWait,
                    "10.0.0.1:30020",
                    &format!("10.0.0.9:{port}"),
                    u64::from(port),
                ),
                age,
            );
            s.recv_q = q;
            s
        };
        let snap = snapshot(vec![
            aged(4002, 20_000, 1),
            aged(4001, 90_000, 700),
            aged(4003, 50_000, 5),
        ]);
        let f = classify(&snap, &Thresholds::default());
        let order = |sort: SortBy| -> Vec<u16> {
            let opts = Options {
                all_sockets: false,
                sort,
            };
            Report::new(&snap, f.clone(), &opts)
                .listed()
                .iter()
                .map(|l| l.socket.remote.port())
                .collect()
        };
        assert_eq!(
            order(SortBy::Severity),
            [4001, 4003, 4002],
            "one finding: oldest first"
        );
        assert_eq!(order(SortBy::Age), [4001, 4003, 4002]);
        assert_eq!(order(SortBy::Queue), [4001, 4003, 4002]);
        assert_eq!(order(SortBy::Remote), [4001, 4002, 4003]);
    }
}
