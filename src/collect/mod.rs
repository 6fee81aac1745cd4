//! Collectors: everything that reads the kernel. Each source fills the same
//! model; parsers are pure functions over bytes, tested on fixtures.

pub mod capture;
pub mod destroy;
pub mod host;
pub mod netlink;
pub mod netns;
pub mod procnet;
pub mod procs;

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::model::{
    Family, Filter, Forwarded, Gaps, Host, InodeMap, Netns, Snapshot, Socket, Source,
};

/// Which socket source to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// netlink, or /proc/net/tcp when netlink cannot be opened.
    Auto,
    Netlink,
    Proc,
}

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub source: SourceChoice,
    pub filter: Filter,
    /// Walk /proc/*/fd for owners (off with `--no-processes`).
    pub owners: bool,
    /// `--netns NAME|PATH|PID`; `None` scans zombiescan's own namespace.
    pub netns: Option<String>,
    /// A `--port` scan of zombiescan's own namespace also scans the
    /// namespaces a forwarder or NAT sends the port to (off with
    /// `--no-follow`).
    pub follow: bool,
}

/// What `/proc/net/tcp` cannot show, said in the report.
pub const PROC_SOURCE_LIMITS: &str = "source proc: no tcp_info (idle times, windows, rtt, \
unacked), no socket cookies, no accept-queue limits of listeners";

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

fn netlink_sockets(filter: &Filter, gaps: &mut Gaps) -> Result<Vec<Socket>> {
    let dump = netlink::dump(filter)?;
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
struct Inside {
    source: Source,
    sockets: Vec<Socket>,
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
    let (source, sockets) = match opts.source {
        SourceChoice::Netlink => (Source::Netlink, netlink_sockets(filter, &mut gaps)?),
        SourceChoice::Proc => (Source::Proc, proc_sockets(net_dir, filter, &mut gaps)?),
        SourceChoice::Auto => match netlink_sockets(filter, &mut gaps) {
            Ok(s) => (Source::Netlink, s),
            Err(e @ Error::NetlinkUnavailable(_)) => {
                gaps.notes.push(format!(
                    "netlink unavailable ({e}): read /proc/net/tcp instead"
                ));
                (Source::Proc, proc_sockets(net_dir, filter, &mut gaps)?)
            }
            Err(e) => return Err(e),
        },
    };
    if source == Source::Proc {
        gaps.notes.push(PROC_SOURCE_LIMITS.into());
    }
    // Behind a scanned port there may be an upstream in trouble: a second,
    // small dump of the sockets that show it, on every other port.
    let neighbours = if source == Source::Netlink && !filter.ports.is_empty() {
        netlink::dump_sockets_where(neighbour_states(), &[], |s| {
            !filter.ports.contains(&s.local.port()) && !filter.ports.contains(&s.remote.port())
        })
        .map(|d| d.sockets)
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let (host, notes) = host::read(net_dir);
    gaps.notes.extend(notes);
    Ok(Inside {
        source,
        sockets,
        neighbours,
        host,
        gaps,
    })
}

/// Collects in the namespace at `path`, or in this thread's own.
fn inside(path: Option<&Path>, opts: &ScanOptions) -> Result<Inside> {
    match path {
        None => collect_inside(opts),
        Some(p) => netns::run_in(p, || collect_inside(opts)),
    }
}

const PROC: &str = "/proc";

fn own_netns() -> Option<u64> {
    netns::inode(Path::new("/proc/self/ns/net"))
}

/// The label of the namespace with inode `ino`: its name, and the
/// container of the first process in it that runs in one (`first` is
/// tried before the others).
fn label(
    ino: Option<u64>,
    first: Option<u32>,
    pids: &[u32],
    names: &BTreeMap<u64, String>,
) -> Netns {
    let own = own_netns();
    let container = if ino.is_some() && ino == own {
        None
    } else {
        first
            .into_iter()
            .chain(pids.iter().copied())
            .find_map(|p| netns::container_of(Path::new(PROC), p))
    };
    let name = ino.and_then(|i| names.get(&i).cloned());
    let own = ino.is_some() && ino == own;
    let enter = if own {
        None
    } else {
        name.clone()
            .or_else(|| first.or(pids.first().copied()).map(|p| p.to_string()))
    };
    Netns {
        inode: ino,
        name,
        container,
        own,
        enter,
    }
}

/// A docker-proxy forwarding one of the scanned ports, from its command
/// line (`-host-port P -container-ip IP -container-port CP`).
#[derive(Debug)]
struct Forwarder {
    pid: u32,
    host_port: u16,
    container_ip: Option<IpAddr>,
    container_port: u16,
}

/// The docker-proxy processes of this network namespace that forward one
/// of `ports`.
fn forwarders(ports: &[u16]) -> Vec<Forwarder> {
    let own = own_netns();
    let mut out = Vec::new();
    for entry in fs::read_dir(PROC).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if fs::read(entry.path().join("comm")).ok().as_deref() != Some(b"docker-proxy\n")
            || netns::inode(&entry.path().join("ns/net")) != own
        {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0 || b == b' ').collect();
        let arg = |flag: &[u8]| {
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        if let (Some(Ok(host_port)), Some(Ok(container_port))) = (
            arg(b"-host-port").map(str::parse::<u16>),
            arg(b"-container-port").map(str::parse::<u16>),
        ) && ports.contains(&host_port)
        {
            out.push(Forwarder {
                pid,
                host_port,
                container_ip: arg(b"-container-ip").and_then(|v| v.parse().ok()),
                container_port,
            });
        }
    }
    out
}

/// The IPv4 addresses of the calling thread's namespace, from the local
/// table of `/proc/thread-self/net/fib_trie` ("|-- 172.17.0.2" followed
/// by "/32 host LOCAL").
pub fn local_addrs(fib_trie: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in fib_trie.lines() {
        let t = line.trim_start_matches([' ', '|', '-', '+']);
        if let Ok(ip) = t.trim().parse::<IpAddr>() {
            last = Some(ip);
        } else if line.contains("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// A namespace a scanned port is served in, and its part of the scan.
struct Followed {
    netns: Netns,
    inside: Inside,
    /// The scan's filter, with the ports served there.
    filter: Filter,
    forwarded: Vec<Forwarded>,
}

/// The namespaces other than this one where the scanned ports are served:
/// the container ports docker-proxy forwards them to (in the namespace
/// that holds the container's address), and the ports themselves when
/// nothing here listens on them (NAT rules forward them). Each is scanned
/// for those ports.
fn follow(opts: &ScanOptions, here: &[Socket]) -> Vec<Followed> {
    let ports = &opts.filter.ports;
    let fwd = forwarders(ports);
    let listened: Vec<u16> = here
        .iter()
        .filter(|s| s.state == crate::model::TcpState::Listen)
        .map(|s| s.local.port())
        .collect();
    // (port looked for there, host port, forwarder)
    let mut wanted: Vec<(u16, u16, Option<&Forwarder>)> = fwd
        .iter()
        .map(|f| (f.container_port, f.host_port, Some(f)))
        .collect();
    // NAT leaves no socket here for the connections it forwards: a port
    // with sockets but no listener is a client's (a database's, say).
    for &p in ports {
        let touched = here
            .iter()
            .any(|s| s.local.port() == p || s.remote.port() == p);
        if !listened.contains(&p) && !touched && !fwd.iter().any(|f| f.host_port == p) {
            wanted.push((p, p, None));
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let look: Vec<u16> = wanted.iter().map(|w| w.0).collect();
    let names = netns::names();
    let own = own_netns();
    let listen = crate::model::TcpState::Listen.mask_bit();
    let mut out = Vec::new();
    for (ino, (path, pids)) in netns::all(Path::new(PROC)) {
        if Some(ino) == own {
            continue;
        }
        let ways = netns::ways_in(ino, &path, &pids, &names, Path::new(PROC));
        let Some((path, fd)) = netns::open_ns(ino, &ways) else {
            continue;
        };
        let found = netns::run_in_file(&path, fd, || {
            let d = netlink::dump_sockets(listen, &look)?;
            let addrs = fs::read_to_string("/proc/thread-self/net/fib_trie")
                .map(|t| local_addrs(&t))
                .unwrap_or_default();
            Ok((d.sockets, addrs))
        });
        let Ok((listeners, addrs)) = found else {
            continue;
        };
        let mut forwarded = Vec::new();
        let mut there: Vec<u16> = Vec::new();
        for &(cport, host_port, f) in &wanted {
            // A container port names the namespace holding the container's
            // address; many containers may listen on the same port.
            if let Some(ip) = f.and_then(|f| f.container_ip)
                && !addrs.contains(&ip)
            {
                continue;
            }
            let ls: Vec<&Socket> = listeners
                .iter()
                .filter(|l| l.local.port() == cport)
                .collect();
            let Some(first) = ls.first() else { continue };
            forwarded.push(Forwarded {
                port: host_port,
                to: match f.and_then(|f| f.container_ip) {
                    Some(ip) => SocketAddr::new(ip, cport),
                    None => first.local,
                },
                by: f.map(|f| f.pid),
                netns: String::new(),
                queue: ls.iter().map(|l| l.recv_q).sum(),
                backlog: ls.iter().map(|l| l.send_q).sum(),
            });
            if !there.contains(&cport) {
                there.push(cport);
            }
        }
        if there.is_empty() {
            continue;
        }
        let sub = ScanOptions {
            filter: Filter {
                ports: there,
                ..opts.filter.clone()
            },
            netns: None,
            ..opts.clone()
        };
        let Ok(ins) = inside(Some(&path), &sub) else {
            continue;
        };
        let netns = label(Some(ino), None, &pids, &names);
        for f in &mut forwarded {
            f.netns = netns.label();
        }
        out.push(Followed {
            netns,
            inside: ins,
            filter: sub.filter,
            forwarded,
        });
    }
    // A port NAT may send anywhere is followed only where one namespace
    // serves it: several would be a guess.
    let nat_ports: Vec<u16> = out
        .iter()
        .flat_map(|f| f.forwarded.iter())
        .filter(|f| f.by.is_none())
        .map(|f| f.port)
        .collect();
    let ambiguous: Vec<u16> = nat_ports
        .iter()
        .copied()
        .filter(|p| nat_ports.iter().filter(|q| *q == p).count() > 1)
        .collect();
    if !ambiguous.is_empty() {
        for f in &mut out {
            f.forwarded
                .retain(|x| x.by.is_some() || !ambiguous.contains(&x.port));
        }
        out.retain(|f| !f.forwarded.is_empty());
    }
    out
}

/// Scans one network namespace: zombiescan's own, or `--netns`; with
/// `--port` on the host, also the namespaces the port is forwarded to,
/// which come first. A watch passes its `memory` of the owners (see
/// [`procs::Memory`]).
pub fn scan(opts: &ScanOptions, memory: Option<&mut procs::Memory>) -> Result<Vec<Snapshot>> {
    let captured_at = SystemTime::now();
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
        follow(opts, &ins.sockets)
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
    let mut snaps = attribute(opts, captured_at, parts, memory);
    for (snap, filter) in snaps.iter_mut().zip(filters) {
        snap.filter = filter;
    }
    if let Some(snap) = snaps.last_mut() {
        if !forwarded.is_empty() {
            snap.hints = forwarded.iter().map(forward_hint).collect();
            snap.forwarded = forwarded;
        } else if host_scan {
            snap.hints = elsewhere(snap, opts);
        }
    }
    Ok(snaps)
}

/// The host's part of a followed port says where it is served.
fn forward_hint(f: &Forwarded) -> String {
    match f.by {
        Some(pid) => format!(
            "port {} is forwarded by docker-proxy (pid {pid}) to {}, served in {}: its report comes first",
            f.port, f.to, f.netns
        ),
        None => format!(
            "nothing listens on port {} here: the one listener on it is {} in {} (its report comes \
             first), where NAT rules would send it (Docker without its userland proxy, a Kubernetes \
             hostPort or NodePort)",
            f.port, f.to, f.netns
        ),
    }
}

/// Scans every network namespace in use on the host (`--all-netns`), with
/// one walk of /proc for the owners of all.
pub fn scan_all(opts: &ScanOptions, memory: Option<&mut procs::Memory>) -> Result<Vec<Snapshot>> {
    let captured_at = SystemTime::now();
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
    let mut snaps = attribute(opts, captured_at, parts, memory);
    if let Some(first) = snaps.first_mut() {
        first
            .gaps
            .notes
            .extend(skipped.into_iter().map(|e| format!("not scanned: {e}")));
    }
    Ok(snaps)
}

/// Finds the owners of the sockets of every part with one walk of /proc,
/// then applies the pid and process-name filters.
fn attribute(
    opts: &ScanOptions,
    captured_at: SystemTime,
    parts: Vec<(Netns, Inside)>,
    memory: Option<&mut procs::Memory>,
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
            shared: InodeMap::default(),
            processes: BTreeMap::new(),
            owners_walked: opts.owners,
            netns,
            host: ins.host,
            gaps: Gaps {
                as_root,
                ..ins.gaps
            },
            hints: Vec::new(),
            neighbours: ins.neighbours,
            forwarded: Vec::new(),
        })
        .collect();
    if !opts.owners {
        return snaps;
    }
    // One index over all parts: part k's sockets start at starts[k].
    let mut starts = Vec::with_capacity(snaps.len());
    let mut wanted: InodeMap<u32> = InodeMap::default();
    wanted.reserve(snaps.iter().map(|s| s.sockets.len()).sum());
    let mut next = 0u32;
    for snap in &snaps {
        starts.push(next);
        for (i, s) in snap.sockets.iter().enumerate() {
            if s.inode != 0 {
                wanted.insert(s.inode, next + i as u32);
            }
        }
        next += snap.sockets.len() as u32;
    }
    let select = procs::Select {
        pids: &filter.pids,
        names: &filter.processes,
    };
    let walk = procs::walk(Path::new(PROC), &wanted, &select, memory);
    for (global, pid) in walk.hits {
        let k = starts.partition_point(|&s| s <= global).saturating_sub(1);
        let snap = &mut snaps[k];
        snap.add_owner((global - starts[k]) as usize, pid);
        if let Some(p) = walk.processes.get(&pid) {
            snap.processes.entry(pid).or_insert_with(|| p.clone());
        }
    }
    for snap in &mut snaps {
        snap.gaps.processes_vanished = walk.vanished;
        snap.gaps.processes_unreadable = walk.unreadable;
        snap.gaps.processes_out_of_fds = walk.out_of_fds;
        if !snap.sockets.is_empty() && walk.seen == 0 {
            snap.gaps
                .notes
                .push("no process found under /proc (is /proc mounted?): owners unknown".into());
        }
        if !filter.pids.is_empty() || !filter.processes.is_empty() {
            snap.sockets.retain(|s| s.owner != 0);
        }
    }
    snaps
}

/// For a `--port` scan of zombiescan's own namespace that finds no server
/// of its own (nothing, or only docker-proxy, listens): the namespaces where
/// a listener for that port (or the container port docker-proxy forwards
/// it to) lives, and the command that scans it.
fn elsewhere(snap: &Snapshot, opts: &ScanOptions) -> Vec<String> {
    let is_proxy = |pid: &u32| {
        snap.processes
            .get(pid)
            .is_some_and(|p| p.comm == b"docker-proxy")
    };
    let real_listener = snap.sockets.iter().any(|s| {
        s.state == crate::model::TcpState::Listen && !snap.owners_of(s).iter().all(is_proxy)
    });
    let proxied = snap.processes.values().any(|p| p.comm == b"docker-proxy");
    // Sockets but no proxy: a client's port (a database's, say), not a
    // server gone missing.
    if real_listener || (!snap.sockets.is_empty() && !proxied) {
        return Vec::new();
    }
    let mut ports = opts.filter.ports.clone();
    let mut hints = Vec::new();
    for p in snap
        .processes
        .values()
        .filter(|p| p.comm == b"docker-proxy")
    {
        let args: Vec<&[u8]> = p.cmdline.split(|&b| b == b' ').collect();
        let arg = |flag: &[u8]| {
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        if let (Some(host), Some(cport)) = (arg(b"-host-port"), arg(b"-container-port"))
            && let (Ok(host), Ok(cport)) = (host.parse::<u16>(), cport.parse::<u16>())
            && opts.filter.ports.contains(&host)
        {
            hints.push(format!(
                "port {host} is forwarded by docker-proxy (pid {}) to {}:{cport}",
                p.pid,
                arg(b"-container-ip").unwrap_or("the container")
            ));
            if !ports.contains(&cport) {
                ports.push(cport);
            }
        }
    }
    let names = netns::names();
    let own = own_netns();
    let mut unentered = Vec::new();
    for (ino, (path, pids)) in netns::all(Path::new(PROC)) {
        if Some(ino) == own {
            continue;
        }
        let listen = crate::model::TcpState::Listen.mask_bit();
        let ways = netns::ways_in(ino, &path, &pids, &names, Path::new(PROC));
        let dump = || netlink::dump_sockets(listen, &ports);
        let found = match netns::open_ns(ino, &ways) {
            Some((p, fd)) => netns::run_in_file(&p, fd, dump),
            // Not one way in opens: gone, or (not root) not ours to open,
            // which entering through its path says.
            None if nix::unistd::geteuid().is_root() => continue,
            None => netns::run_in(&path, dump),
        };
        let listeners = match found {
            Ok(netlink::Dump { sockets, .. }) => sockets,
            Err(_) => {
                unentered.push(label(Some(ino), None, &pids, &names).label());
                continue;
            }
        };
        let mut lports: Vec<u16> = listeners.iter().map(|s| s.local.port()).collect();
        lports.sort_unstable();
        lports.dedup();
        if lports.is_empty() {
            continue;
        }
        let netns = label(Some(ino), None, &pids, &names);
        let target = netns
            .name
            .clone()
            .or_else(|| pids.first().map(u32::to_string))
            .unwrap_or_else(|| path.display().to_string());
        let plist: Vec<String> = lports.iter().map(u16::to_string).collect();
        hints.push(format!(
            "a server listens on port {} in {}: zombiescan --netns {target} --port {}",
            plist.join(","),
            netns.label(),
            plist.join(" --port ")
        ));
    }
    let port_list = opts
        .filter
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if hints.is_empty() && unentered.is_empty() {
        hints.push(format!(
            "nothing listens on port {port_list} in this network namespace or any other"
        ));
    } else if hints.is_empty() {
        let root = if nix::unistd::geteuid().is_root() {
            ""
        } else {
            " (run as root to look into them)"
        };
        let shown: Vec<String> = unentered.iter().take(3).cloned().collect();
        let more = match unentered.len() {
            n if n > 3 => format!(" and {} more", n - 3),
            _ => String::new(),
        };
        hints.push(format!(
            "nothing listens on port {port_list} in this network namespace; {} other {} could not be \
             entered{root}: {}{more}",
            unentered.len(),
            if unentered.len() == 1 { "namespace" } else { "namespaces" },
            shown.join(", ")
        ));
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespaces_own_addresses() {
        // fixtures/proc/fib_trie: a namespace with 10.231.9.2/24 on a veth.
        let text = include_str!("../../fixtures/proc/fib_trie");
        let want: Vec<IpAddr> = vec!["10.231.9.2".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        assert_eq!(local_addrs(text), want);
        assert!(local_addrs("").is_empty());
    }

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
