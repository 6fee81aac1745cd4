//! Collectors: everything that reads the kernel. Each source fills the same
//! model; parsers are pure functions over bytes, tested on fixtures.

pub mod host;
pub mod netlink;
pub mod procnet;
pub mod procs;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::model::{Family, Filter, Gaps, InodeMap, Snapshot, Socket, Source};

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
    Ok(sockets)
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

/// The inode of a namespace link such as `/proc/self/ns/net` (`net:[N]`).
pub fn netns_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    let s = target.to_str()?;
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Scans the caller's network namespace.
pub fn scan(opts: &ScanOptions) -> Result<Snapshot> {
    let captured_at = SystemTime::now();
    let net_dir = PathBuf::from("/proc/self/net");
    let mut gaps = Gaps::default();
    let filter = &opts.filter;
    let (source, sockets) = match opts.source {
        SourceChoice::Netlink => (Source::Netlink, netlink_sockets(filter, &mut gaps)?),
        SourceChoice::Proc => (Source::Proc, proc_sockets(&net_dir, filter, &mut gaps)?),
        SourceChoice::Auto => match netlink_sockets(filter, &mut gaps) {
            Ok(s) => (Source::Netlink, s),
            Err(e @ Error::NetlinkUnavailable(_)) => {
                gaps.notes.push(format!(
                    "netlink unavailable ({e}): read /proc/net/tcp instead"
                ));
                (Source::Proc, proc_sockets(&net_dir, filter, &mut gaps)?)
            }
            Err(e) => return Err(e),
        },
    };
    if source == Source::Proc {
        gaps.notes.push(PROC_SOURCE_LIMITS.into());
    }
    let (host, notes) = host::read(&net_dir);
    gaps.notes.extend(notes);

    let mut walk = procs::Walk::default();
    if opts.owners {
        let mut wanted: InodeMap<u32> = InodeMap::default();
        wanted.reserve(sockets.len());
        for (i, s) in sockets.iter().enumerate() {
            if s.inode != 0 {
                wanted.insert(s.inode, i as u32);
            }
        }
        let select = procs::Select {
            pids: &filter.pids,
            names: &filter.processes,
        };
        walk = procs::walk(Path::new("/proc"), &wanted, &select);
        if !wanted.is_empty() && walk.seen == 0 {
            gaps.notes
                .push("no process found under /proc (is /proc mounted?): owners unknown".into());
        }
    }
    gaps.processes_vanished = walk.vanished;
    gaps.processes_unreadable = walk.unreadable;
    gaps.as_root = nix::unistd::geteuid().is_root();
    let mut snap = Snapshot {
        captured_at,
        source,
        filter: filter.clone(),
        sockets,
        shared: InodeMap::default(),
        processes: walk.processes,
        owners_walked: opts.owners,
        netns: netns_inode(Path::new("/proc/self/ns/net")),
        host,
        gaps,
    };
    for (index, pid) in walk.hits {
        snap.add_owner(index as usize, pid);
    }
    if !snap.filter.pids.is_empty() || !snap.filter.processes.is_empty() {
        snap.sockets.retain(|s| s.owner != 0);
    }
    Ok(snap)
}
