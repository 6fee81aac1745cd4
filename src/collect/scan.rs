//! A scan: the sockets and host counters of each network namespace asked
//! for, and their owners from one walk of /proc.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::fold::Fold;
use super::follow::{elsewhere, follow};
use super::{
    PROC, PROC_SOURCE_LIMITS, ScanOptions, SourceChoice, host, netlink, netns, procnet, procs, unix,
};
use crate::error::{Error, Result};
use crate::model::OwnersFrom;
use crate::model::{
    Family, Filter, Folded, Gaps, Hint, Host, InodeMap, Netns, Process, Snapshot, Socket, Source,
    UnixSocket,
};

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

/// Reads `/proc/net/tcp` and `tcp6` under `net_dir`.
pub fn proc_sockets(net_dir: &Path, filter: &Filter, gaps: &mut Gaps) -> Result<Vec<Socket>> {
    let ticks = clock_ticks();
    let mut sockets = Vec::new();
    for (name, family) in [("tcp", Family::Ipv4), ("tcp6", Family::Ipv6)] {
        let path = net_dir.join(name);
        let text = match fs::read(&path) {
            Ok(t) => t,
            // A kernel without IPv6 has no tcp6.
            Err(e) if family == Family::Ipv6 && e.kind() == std::io::ErrorKind::NotFound => {
                gaps.notes
                    .push(format!("{} not found: IPv6 not scanned", path.display()));
                continue;
            }
            Err(e) => return Err(Error::ProcUnavailable { path, source: e }),
        };
        let parsed = procnet::parse(&text, family, ticks, filter, &mut sockets)?;
        if parsed.bad_lines > 0 {
            gaps.notes.push(format!(
                "{} lines of {} could not be parsed and were skipped",
                parsed.bad_lines,
                path.display()
            ));
        }
    }
    dedup(&mut sockets);
    Ok(sockets)
}

/// `/proc/net/tcp` is read a page at a time while the table changes: a
/// socket can be listed twice. One row per socket: by inode, or by its
/// addresses for the inode-less (TIME_WAIT, orphans, unaccepted).
fn dedup(sockets: &mut Vec<Socket>) {
    let mut seen = std::collections::HashSet::with_capacity(sockets.len());
    sockets.retain(|s| {
        if s.inode != 0 {
            seen.insert((s.inode, None))
        } else {
            seen.insert((0, Some((s.local, s.remote))))
        }
    });
}

fn netlink_sockets(
    filter: &Filter,
    fold: Option<&mut Fold>,
    gaps: &mut Gaps,
) -> Result<Vec<Socket>> {
    let dump = match fold {
        Some(f) => netlink::dump_folding(filter, f)?,
        None => netlink::dump(filter)?,
    };
    if dump.interrupted {
        gaps.notes.push(
            "the socket table changed during the netlink dump: a few sockets may be missing".into(),
        );
    }
    if dump.bad_records > 0 {
        gaps.notes.push(format!(
            "{} netlink records could not be decoded and were skipped",
            dump.bad_records
        ));
    }
    Ok(dump.sockets)
}

/// What is read inside one network namespace.
pub(super) struct Inside {
    source: Source,
    sockets: Vec<Socket>,
    folded: Folded,
    unix: Vec<UnixSocket>,
    neighbours: Vec<Socket>,
    host: Host,
    gaps: Gaps,
}

/// The states [`Snapshot::neighbours`] keeps: few sockets on a busy host
/// (ESTABLISHED, the bulk, is left out), and the kernel filters them.
fn neighbour_states() -> u32 {
    use crate::model::TcpState::{CloseWait, FinWait2, Listen, SynSent};
    [Listen, CloseWait, FinWait2, SynSent]
        .iter()
        .fold(0, |m, s| m | s.mask_bit())
}

/// Reads the sockets and the per-namespace host context of the calling
/// thread's network namespace.
fn collect_inside(opts: &ScanOptions) -> Result<Inside> {
    // The thread's own view: right inside a namespace entered with setns.
    let net_dir = Path::new("/proc/thread-self/net");
    let mut gaps = Gaps::default();
    let filter = &opts.filter;
    // Read first: folding needs the uptime and the ephemeral range.
    let (host, notes) = host::read(net_dir);
    gaps.notes.extend(notes);
    let mut fold = opts.fold.as_ref().map(|t| Fold::new(t, &host));
    // Behind a scanned port there may be an upstream in trouble: a second,
    // small dump of the sockets that show it, on every other port, read on
    // a thread of its own (in this thread's namespace) while the first is.
    std::thread::scope(|scope| {
        let neighbours = (opts.source != SourceChoice::Proc && !filter.ports.is_empty())
            .then(|| scope.spawn(|| neighbours_of(filter)));
        let (source, sockets) = read_sockets(opts, fold.as_mut(), net_dir, &mut gaps)?;
        let neighbours = match neighbours {
            Some(n) if source == Source::Netlink => n.join().unwrap_or_default(),
            _ => Vec::new(),
        };
        let folded = match fold {
            Some(f) if source == Source::Netlink => f.finish(),
            _ => Folded::default(),
        };
        let mut ins = finish_inside(net_dir, source, sockets, neighbours, host, gaps);
        ins.folded = folded;
        Ok(ins)
    })
}

/// The sockets asked for, from the source asked for (netlink, falling
/// back to /proc/net/tcp where netlink cannot be opened).
fn read_sockets(
    opts: &ScanOptions,
    fold: Option<&mut Fold>,
    net_dir: &Path,
    gaps: &mut Gaps,
) -> Result<(Source, Vec<Socket>)> {
    let filter = &opts.filter;
    let (source, sockets) = match opts.source {
        // --path alone asks for no TCP socket.
        _ if filter.unix_only() => (Source::Netlink, Vec::new()),
        SourceChoice::Netlink => (Source::Netlink, netlink_sockets(filter, fold, gaps)?),
        SourceChoice::Proc => (Source::Proc, proc_sockets(net_dir, filter, gaps)?),
        SourceChoice::Auto => match netlink_sockets(filter, fold, gaps) {
            Ok(s) => (Source::Netlink, s),
            Err(e @ Error::NetlinkUnavailable(_)) => {
                gaps.notes.push(format!(
                    "netlink unavailable ({e}): read /proc/net/tcp instead"
                ));
                (Source::Proc, proc_sockets(net_dir, filter, gaps)?)
            }
            Err(e) => return Err(e),
        },
    };
    if source == Source::Proc {
        gaps.notes.push(PROC_SOURCE_LIMITS.into());
    }
    Ok((source, sockets))
}

/// The sockets in [`neighbour_states`] on ports other than the scanned
/// ones.
fn neighbours_of(filter: &Filter) -> Vec<Socket> {
    netlink::dump_sockets_where(neighbour_states(), &[], |s| {
        !filter.ports.contains(&s.local.port()) && !filter.ports.contains(&s.remote.port())
    })
    .map(|d| d.sockets)
    .unwrap_or_default()
}

/// The unix sockets and the host's counters, beside the TCP sockets read.
fn finish_inside(
    net_dir: &Path,
    source: Source,
    sockets: Vec<Socket>,
    neighbours: Vec<Socket>,
    host: Host,
    mut gaps: Gaps,
) -> Inside {
    let unix = match source {
        Source::Netlink => match unix::dump() {
            Ok((u, interrupted)) => {
                if interrupted {
                    gaps.notes.push(
                        "the unix socket table changed during the dump: some may be missing".into(),
                    );
                }
                u
            }
            Err(e) => {
                gaps.notes.push(format!("unix sockets not read: {e}"));
                Vec::new()
            }
        },
        _ => match fs::read(net_dir.join("unix")) {
            Ok(text) => {
                gaps.notes.push(unix::PROC_UNIX_LIMITS.into());
                unix::parse_proc(&text)
            }
            Err(e) => {
                gaps.notes
                    .push(format!("unix sockets not read: /proc/net/unix: {e}"));
                Vec::new()
            }
        },
    };
    Inside {
        source,
        sockets,
        folded: Folded::default(),
        unix,
        neighbours,
        host,
        gaps,
    }
}

/// Collects in the namespace at `path`, or in this thread's own.
pub(super) fn inside(path: Option<&Path>, opts: &ScanOptions) -> Result<Inside> {
    match path {
        None => collect_inside(opts),
        Some(p) => netns::run_in(p, || collect_inside(opts)),
    }
}

pub(super) fn own_netns() -> Option<u64> {
    netns::inode(Path::new("/proc/self/ns/net"))
}

/// The label of the namespace with inode `ino`: its name, and the
/// container of the first process in it that runs in one (`first` is
/// tried before the others).
pub(super) fn label(
    ino: Option<u64>,
    first: Option<u32>,
    pids: &[u32],
    names: &BTreeMap<u64, String>,
) -> Netns {
    let own = own_netns();
    let identity = if ino.is_some() && ino == own {
        netns::Identity::default()
    } else {
        netns::identity_of_netns(
            Path::new(PROC),
            netns::Roots::host(),
            Path::new(super::k8s::LOG_ROOT),
            first.into_iter().chain(pids.iter().copied()),
        )
    };
    let name = ino.and_then(|i| names.get(&i).cloned());
    let own = ino.is_some() && ino == own;
    let enter = if own {
        None
    } else {
        name.clone()
            .or_else(|| first.or(pids.first().copied()).map(|p| p.to_string()))
    };
    let initial = netns::inode(&Path::new(PROC).join("1/ns/net")).map(|i| Some(i) == ino);
    Netns {
        inode: ino,
        name,
        container: identity.container,
        pod: identity.pod,
        own,
        enter,
        initial,
    }
}

/// Scans one network namespace: zombiescan's own, or `--netns`; with
/// `--port` on the host, also the namespaces the port is forwarded to,
/// which come first. A watch passes its `memory` of the owners (see
/// [`procs::Memory`]).
pub fn scan(opts: &ScanOptions, memory: Option<&mut procs::Memory>) -> Result<Vec<Snapshot>> {
    let captured_at = SystemTime::now();
    let kernel_walk = start_kernel_walk(opts, &memory);
    let names = netns::names();
    let (path, netns) = match &opts.netns {
        None => (None, label(own_netns(), None, &[], &names)),
        Some(arg) => {
            let path = netns::resolve(arg)?;
            let ino = netns::inode(&path);
            let first = arg.parse::<u32>().ok();
            let pids: Vec<u32> = netns::all(Path::new(PROC))
                .remove(&ino.unwrap_or(0))
                .map(|(_, pids)| pids)
                .unwrap_or_default();
            (Some(path), label(ino, first, &pids, &names))
        }
    };
    let ins = inside(path.as_deref(), opts)?;
    let host_scan = opts.netns.is_none() && !opts.filter.ports.is_empty();
    let followed = if host_scan && opts.follow {
        follow(opts, &ins.sockets, &ins.folded)
    } else {
        Vec::new()
    };
    let mut forwarded = Vec::new();
    let mut parts = Vec::new();
    let mut filters = Vec::new();
    for f in followed {
        forwarded.extend(f.forwarded);
        parts.push((f.netns, f.inside));
        filters.push(f.filter);
    }
    parts.push((netns, ins));
    let mut snaps = attribute(opts, captured_at, parts, memory, kernel_walk);
    for (snap, filter) in snaps.iter_mut().zip(filters) {
        snap.filter = filter;
    }
    if let Some(snap) = snaps.last_mut() {
        if !forwarded.is_empty() {
            snap.hints = forwarded.iter().cloned().map(Hint::Followed).collect();
            snap.forwarded = forwarded;
        } else if host_scan {
            snap.hints = elsewhere(snap, opts);
        }
    }
    Ok(snaps)
}

/// Scans every network namespace in use on the host (`--all-netns`), with
/// one walk of /proc for the owners of all.
pub fn scan_all(opts: &ScanOptions, memory: Option<&mut procs::Memory>) -> Result<Vec<Snapshot>> {
    let captured_at = SystemTime::now();
    let kernel_walk = start_kernel_walk(opts, &memory);
    let names = netns::names();
    let own = own_netns();
    let mut parts = Vec::new();
    let mut skipped = Vec::new();
    for (ino, (path, pids)) in netns::all(Path::new(PROC)) {
        let here = Some(ino) == own;
        let got = if here {
            inside(None, opts)
        } else {
            // Any member still in it will do: the first one found may have
            // exited since.
            let ways = netns::ways_in(ino, &path, &pids, &names, Path::new(PROC));
            match netns::open_ns(ino, &ways) {
                Some((p, fd)) => netns::run_in_file(&p, fd, || collect_inside(opts)),
                // Every way in is gone: the namespace ended meanwhile.
                None => continue,
            }
        };
        match got {
            Ok(ins) => parts.push((label(Some(ino), None, &pids, &names), ins)),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    if parts.is_empty() {
        return Err(Error::Netns {
            path: PathBuf::from(PROC),
            reason: format!("no namespace could be scanned: {}", skipped.join("; ")),
        });
    }
    let mut snaps = attribute(opts, captured_at, parts, memory, kernel_walk);
    if let Some(first) = snaps.first_mut() {
        first
            .gaps
            .notes
            .extend(skipped.into_iter().map(|e| format!("not scanned: {e}")));
    }
    Ok(snaps)
}

/// The kernel's walk of the fd tables, started as a scan begins so that it
/// runs while the sockets are read: for a one-shot scan that finds owners
/// (a watch, a recorder and the exporter keep their remembered walk, which
/// re-reads only the fd tables that changed, and whose full walks the
/// kernel's does where it may: `procs::walk`). A socket opened
/// after the walk passed its process is looked for by a second walk.
fn start_kernel_walk(
    opts: &ScanOptions,
    memory: &Option<&mut procs::Memory>,
) -> Option<super::bpf::Pending> {
    (opts.owners && memory.is_none()).then(super::bpf::start)
}

/// Finds the owners of the sockets of every part with one walk (the
/// kernel's, when `kernel_walk` gives its records, or /proc's), then
/// applies the pid and process-name filters.
fn attribute(
    opts: &ScanOptions,
    captured_at: SystemTime,
    parts: Vec<(Netns, Inside)>,
    memory: Option<&mut procs::Memory>,
    kernel_walk: Option<super::bpf::Pending>,
) -> Vec<Snapshot> {
    let filter = &opts.filter;
    let as_root = nix::unistd::geteuid().is_root();
    let mut snaps: Vec<Snapshot> = parts
        .into_iter()
        .map(|(netns, ins)| Snapshot {
            captured_at,
            source: ins.source,
            filter: filter.clone(),
            sockets: ins.sockets,
            folded: ins.folded,
            shared: InodeMap::default(),
            processes: BTreeMap::new(),
            owners_walked: opts.owners,
            owners_from: None,
            netns,
            host: ins.host,
            gaps: Gaps {
                as_root,
                ..ins.gaps
            },
            hints: Vec::new(),
            neighbours: ins.neighbours,
            forwarded: Vec::new(),
            unix: ins.unix,
            unix_links: Vec::new(),
            waiting: Vec::new(),
        })
        .collect();
    if !opts.owners {
        for snap in &mut snaps {
            unix::select(snap, filter, Path::new(PROC));
        }
        return snaps;
    }
    // The parts' sockets in one list: part k's start at starts[k], its
    // unix sockets after them.
    let mut starts = Vec::with_capacity(snaps.len());
    let mut next = 0u32;
    for snap in &snaps {
        starts.push(next);
        next += held(snap) as u32;
    }
    let inodes = || {
        snaps
            .iter()
            .flat_map(|snap| (0..held(snap)).map(|i| inode_at(snap, i)))
    };
    let select = procs::Select {
        pids: &filter.pids,
        names: &filter.processes,
    };
    // The kernel's walk where BPF may be used, else the /proc walk. With
    // no socket to find owners for, the kernel's is not waited for.
    // Where ZOMBIESCAN_OWNERS=bpf asked for the kernel's, a refusal is
    // said.
    let mut refused = None;
    let any = inodes().any(|i| i != 0);
    let bpf = match kernel_walk.filter(|_| any).map(|k| k.wait()) {
        Some(Ok(first)) => Some(procs::walk_kernel(
            Path::new(PROC),
            inodes(),
            &select,
            first,
        )),
        Some(Err(why)) => {
            refused = super::bpf::forced().then(|| {
                format!("ZOMBIESCAN_OWNERS=bpf, but the kernel's walk could not be used ({why}): owners from /proc")
            });
            None
        }
        None => None,
    };
    let (walk, kernel, owners_from) = match bpf {
        Some((w, k)) => (w, Some(k), OwnersFrom::Bpf),
        None => {
            // The /proc walk (and a watch's full walk by the kernel's)
            // looks each descriptor's inode up here.
            let mut wanted: InodeMap<u32> = InodeMap::default();
            wanted.reserve(next as usize);
            for (i, inode) in inodes().enumerate() {
                if inode != 0 {
                    wanted.insert(inode, i as u32);
                }
            }
            let walk = procs::walk(Path::new(PROC), &wanted, &select, memory);
            let from = if walk.from_kernel {
                OwnersFrom::Bpf
            } else {
                OwnersFrom::Proc
            };
            (walk, None, from)
        }
    };
    // The last pid each snapshot took the details of: a process's
    // sockets come one after another.
    let mut last = vec![0u32; snaps.len()];
    match kernel {
        // Each socket asks the kernel's records who holds it.
        Some(k) => {
            for (snap, last) in snaps.iter_mut().zip(&mut last) {
                for i in 0..held(snap) {
                    for pid in k.of(inode_at(snap, i)) {
                        owned(snap, i, pid, &walk.processes, last);
                    }
                }
            }
        }
        None => {
            for &(global, pid) in &walk.hits {
                let k = starts.partition_point(|&s| s <= global).saturating_sub(1);
                let i = (global - starts[k]) as usize;
                owned(&mut snaps[k], i, pid, &walk.processes, &mut last[k]);
            }
        }
    }
    for snap in &mut snaps {
        snap.owners_from = Some(owners_from);
        snap.gaps.notes.extend(refused.clone());
        snap.gaps.processes_vanished = walk.vanished;
        snap.gaps.processes_unreadable = walk.unreadable;
        snap.gaps.processes_out_of_fds = walk.out_of_fds;
        if snap.tcp_count() > 0 && walk.seen == 0 {
            snap.gaps
                .notes
                .push("no process found under /proc (is /proc mounted?): owners unknown".into());
        }
        // In a pod, each process is named after its container, looked up
        // once per container (its processes share their cgroup file).
        if snap.netns.pod.is_some() {
            let logs = Path::new(super::k8s::LOG_ROOT);
            let mut by_cgroup: BTreeMap<String, Option<String>> = BTreeMap::new();
            for (pid, p) in &mut snap.processes {
                let cgroup =
                    fs::read_to_string(Path::new(PROC).join(pid.to_string()).join("cgroup"))
                        .unwrap_or_default();
                p.container = by_cgroup
                    .entry(cgroup)
                    .or_insert_with(|| {
                        netns::identity_of(Path::new(PROC), netns::Roots::host(), logs, *pid)
                            .and_then(|i| i.container)
                            .and_then(|c| c.name)
                    })
                    .clone();
            }
        }
        unix::select(snap, filter, Path::new(PROC));
        if !filter.pids.is_empty() || !filter.processes.is_empty() {
            snap.sockets.retain(|s| s.owner != 0);
            snap.folded.sockets.retain(|f| f.owner != 0);
            snap.unix.retain(|u| u.owner != 0);
        }
    }
    snaps
}

/// The sockets of a snapshot a process may hold, numbered as for
/// [`inode_at`].
fn held(snap: &Snapshot) -> usize {
    snap.sockets.len() + snap.unix.len() + snap.folded.sockets.len()
}

/// The inode of socket `i` of a snapshot: its TCP sockets, then its unix
/// ones, then those folded.
fn inode_at(snap: &Snapshot, i: usize) -> u64 {
    let (tcp, unix) = (snap.sockets.len(), snap.unix.len());
    if i < tcp {
        snap.sockets[i].inode
    } else if i < tcp + unix {
        snap.unix[i - tcp].inode
    } else {
        snap.folded
            .sockets
            .get(i - tcp - unix)
            .map_or(0, |f| u64::from(f.inode))
    }
}

/// Records that `pid` holds socket `i` of `snap` (numbered as for
/// [`inode_at`]), with its details unless `last`, the pid recorded
/// before, already brought them.
fn owned(
    snap: &mut Snapshot,
    i: usize,
    pid: u32,
    processes: &BTreeMap<u32, Process>,
    last: &mut u32,
) {
    let (tcp, unix) = (snap.sockets.len(), snap.unix.len());
    if i < tcp {
        snap.add_owner(i, pid);
    } else if i < tcp + unix {
        snap.add_unix_owner(i - tcp, pid);
    } else {
        snap.add_folded_owner(i - tcp - unix, pid);
    }
    if *last != pid
        && let Some(p) = processes.get(&pid)
    {
        snap.processes.entry(pid).or_insert_with(|| p.clone());
        *last = pid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pages of /proc/net/tcp read across a change repeat a row: it
    /// counts once (fixtures/proc/tcp, its rows read twice).
    #[test]
    fn a_socket_listed_twice_by_proc_counts_once() {
        let text = include_bytes!("../../fixtures/proc/tcp");
        let body: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .skip(1)
            .filter(|l| !l.is_empty())
            .collect();
        let mut twice = text.to_vec();
        for line in &body {
            twice.extend_from_slice(line);
            twice.push(b'\n');
        }
        let mut once = Vec::new();
        procnet::parse(text, Family::Ipv4, 100, &Filter::default(), &mut once).expect("parse");
        let mut all = Vec::new();
        procnet::parse(&twice, Family::Ipv4, 100, &Filter::default(), &mut all).expect("parse");
        assert_eq!(all.len(), 2 * once.len());
        dedup(&mut all);
        assert_eq!(all, once);
    }
}
