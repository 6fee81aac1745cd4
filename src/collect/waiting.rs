//! What a blamed process waits on: its connections elsewhere that sent a
//! request and have received nothing since (a worker blocked on its
//! database), and the call its threads are blocked in.
//!
//! Looked up only for the processes a finding blames, after a first
//! classification, so a healthy scan costs nothing more: their descriptors
//! from `/proc/PID/fd`, one netlink dump of the namespace's ESTABLISHED
//! sockets kept to those, and `/proc/PID/task/TID/syscall` and `wchan`
//! (proc(5)). A `poll`'s descriptors are read from its array in
//! `/proc/PID/mem`, which only root (ptrace access) may do; elsewhere the
//! call is named without them.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::netlink;
use crate::model::{Blocked, Direction, Snapshot, Socket, TcpState, Waiting, direction};

/// A `--port` scan looks up waits with a dump of its own up to this many
/// TCP sockets in the namespace.
const MAX_NAMESPACE_SOCKETS: u64 = 50_000;

/// Descriptors a process may wait on that are worth reading back.
const MAX_POLL_FDS: u64 = 8;

/// Adds to `snap.waiting` the outstanding requests of `pids`, read in the
/// snapshot's network namespace. Failures leave it as it was: this is a
/// hint, not the scan.
pub fn probe(snap: &mut Snapshot, pids: &[u32]) {
    if snap.source != crate::model::Source::Netlink || !snap.owners_walked || pids.is_empty() {
        return;
    }
    let proc = Path::new(super::PROC);
    let listening = snap.listening_ports();
    let ephemeral = snap.host.ephemeral_range();
    let outbound = |s: &Socket| {
        s.state == TcpState::Established
            && direction(s, &listening, ephemeral) == Direction::Outbound
    };
    let f = &snap.filter;
    let whole = f.ports.is_empty() && f.paths.is_empty() && f.states.is_empty();
    let range = ephemeral.unwrap_or((1024, u16::MAX));
    let except: Vec<u16> = listening.iter().copied().collect();
    let candidates: Vec<(Socket, u32)> = if whole {
        // Every socket and its owners are in the snapshot already, but for
        // the healthy connections a one-shot scan folded: those of the
        // blamed processes are read again, by inode, in one dump.
        let mut kept: Vec<(Socket, u32)> = snap
            .sockets
            .iter()
            .filter(|s| outbound(s))
            .filter_map(|s| {
                let pid = snap.owners_of(s).iter().find(|p| pids.contains(p))?;
                Some((s.clone(), *pid))
            })
            .collect();
        let folded: HashMap<u64, u32> = snap
            .folded
            .iter()
            .filter(|(_, g)| g.direction == Direction::Outbound)
            .filter_map(|(f, _)| {
                let pid = snap.folded_owners(f).iter().find(|p| pids.contains(p))?;
                Some((u64::from(f.inode), *pid))
            })
            .collect();
        if !folded.is_empty() {
            let reread = || by_inode(&folded, range, &except, &outbound);
            kept.extend(in_namespace(snap, reread).unwrap_or_default());
        }
        kept
    } else {
        // The dump walks the namespace's whole socket table: past this
        // many sockets, say so rather than double the scan.
        let inuse = snap.host.sockstat("TCP", "inuse").unwrap_or(0);
        if inuse > MAX_NAMESPACE_SOCKETS {
            snap.gaps.notes.push(format!(
                "what the blamed processes wait on was not looked up: {inuse} TCP sockets in this \
                 namespace (a scan without --port looks it up from its own dump)"
            ));
            return;
        }
        let dump = || {
            let mut inodes: HashMap<u64, u32> = HashMap::new();
            for &pid in pids {
                for (_, inode) in socket_fds(proc, pid) {
                    inodes.insert(inode, pid);
                }
            }
            by_inode(&inodes, range, &except, &outbound)
        };
        match in_namespace(snap, dump) {
            Some(c) => c,
            None => return,
        }
    };
    snap.waiting.extend(judge(candidates, proc));
}

/// Runs `f` in the snapshot's network namespace: `None` when it can no
/// longer be entered.
fn in_namespace<T: Send>(snap: &Snapshot, f: impl FnOnce() -> T + Send) -> Option<T> {
    match (&snap.netns.enter, snap.netns.own) {
        (_, true) | (None, _) => Some(f()),
        (Some(arg), false) => {
            let path = super::netns::resolve(arg).ok()?;
            super::netns::run_in(&path, || Ok(f())).ok()
        }
    }
}

/// The ESTABLISHED sockets of `inodes` (each with the pid holding it) with
/// a local port in `range` (an outbound connection's: filtered in the
/// kernel, so that a host's many inbound connections are not dumped), in
/// the calling thread's namespace.
fn by_inode(
    inodes: &HashMap<u64, u32>,
    range: (u16, u16),
    except: &[u16],
    outbound: &(dyn Fn(&Socket) -> bool + Sync),
) -> Vec<(Socket, u32)> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(dump) =
        netlink::dump_local_range(TcpState::Established.mask_bit(), range, except, |s| {
            inodes.contains_key(&s.inode) && outbound(s)
        })
    else {
        return Vec::new();
    };
    dump.sockets
        .into_iter()
        .filter_map(|s| {
            let pid = *inodes.get(&s.inode)?;
            Some((s, pid))
        })
        .collect()
}

/// The candidates with a request outstanding: data sent after the last
/// data received; or a thread of the owner blocked on the socket (a reply
/// begun and not ended, as PostgreSQL's extended protocol answers a
/// query's parse at once and its rows when done). The owners' descriptors
/// and threads are read only for those with a candidate.
fn judge(candidates: Vec<(Socket, u32)>, proc: &Path) -> Vec<Waiting> {
    let mut fds: HashMap<u32, HashMap<u64, u32>> = HashMap::new();
    let mut threads: HashMap<u32, Vec<Blocked>> = HashMap::new();
    let mut out = Vec::new();
    for (s, pid) in candidates {
        let Some(ti) = &s.tcp_info else { continue };
        let (Some(sent), Some(recv)) = (ti.last_data_sent(), ti.last_data_recv()) else {
            continue;
        };
        let fd_of = fds.entry(pid).or_insert_with(|| {
            socket_fds(proc, pid)
                .into_iter()
                .map(|(fd, inode)| (inode, fd))
                .collect()
        });
        let Some(&fd) = fd_of.get(&s.inode) else {
            continue;
        };
        let blocked = threads
            .entry(pid)
            .or_insert_with(|| blocked_threads(proc, pid));
        let on_it = blocked.iter().find(|b| b.fds.contains(&fd));
        if sent >= recv && on_it.is_none() {
            continue;
        }
        let thread = on_it
            .or_else(|| blocked.iter().find(|b| b.tid == pid))
            .cloned();
        out.push(Waiting {
            pid,
            fd,
            socket: s,
            thread,
        });
    }
    out
}

/// The socket descriptors of a process: (fd, inode).
fn socket_fds(proc: &Path, pid: u32) -> Vec<(u32, u64)> {
    let dir = proc.join(pid.to_string()).join("fd");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            let t = target.to_str()?;
            let inode = t
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((fd, inode))
        })
        .collect()
}

/// The threads of `pid` blocked in a system call.
fn blocked_threads(proc: &Path, pid: u32) -> Vec<Blocked> {
    let task = proc.join(pid.to_string()).join("task");
    let Ok(entries) = fs::read_dir(&task) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(e.path().join("syscall")) else {
            continue;
        };
        let Some((nr, args)) = parse_syscall(&text) else {
            continue;
        };
        let wchan = fs::read_to_string(e.path().join("wchan")).unwrap_or_default();
        let fds = match syscall_name(nr) {
            Some("read" | "recvfrom" | "recvmsg" | "readv" | "pread64") => {
                u32::try_from(args[0]).ok().into_iter().collect()
            }
            Some("poll" | "ppoll") => poll_fds(proc, pid, args[0], args[1]),
            _ => Vec::new(),
        };
        out.push(Blocked {
            tid,
            syscall: syscall_name(nr).map_or_else(|| format!("syscall {nr}"), str::to_string),
            fds,
            wchan: wchan.trim().to_string(),
        });
    }
    out.sort_by_key(|b| b.tid);
    out
}

/// `/proc/PID/task/TID/syscall`: "NR ARG0 … ARG5 SP PC" for a thread in
/// a system call ("running", or -1, otherwise).
pub fn parse_syscall(text: &str) -> Option<(u64, [u64; 6])> {
    let mut words = text.split_whitespace();
    let nr: i64 = words.next()?.parse().ok()?;
    let nr = u64::try_from(nr).ok()?;
    let mut args = [0u64; 6];
    for a in &mut args {
        *a = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some((nr, args))
}

/// The descriptors of a `poll` array (`struct pollfd`: int fd, short
/// events, short revents), read from the process's memory.
fn poll_fds(proc: &Path, pid: u32, addr: u64, n: u64) -> Vec<u32> {
    use std::io::{Read, Seek, SeekFrom};
    if n == 0 || n > MAX_POLL_FDS {
        return Vec::new();
    }
    let Ok(mut mem) = fs::File::open(proc.join(pid.to_string()).join("mem")) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; (n * 8) as usize];
    if mem.seek(SeekFrom::Start(addr)).is_err() || mem.read_exact(&mut buf).is_err() {
        return Vec::new();
    }
    buf.chunks_exact(8)
        .filter_map(|c| u32::try_from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).ok())
        .collect()
}

/// The names of the calls a blocked server sits in, by number.
pub fn syscall_name(nr: u64) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    const NAMES: &[(u64, &str)] = &[
        (0, "read"),
        (7, "poll"),
        (17, "pread64"),
        (19, "readv"),
        (23, "select"),
        (35, "nanosleep"),
        (42, "connect"),
        (43, "accept"),
        (44, "sendto"),
        (45, "recvfrom"),
        (47, "recvmsg"),
        (61, "wait4"),
        (202, "futex"),
        (230, "clock_nanosleep"),
        (232, "epoll_wait"),
        (270, "pselect6"),
        (271, "ppoll"),
        (281, "epoll_pwait"),
        (288, "accept4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(target_arch = "aarch64")]
    const NAMES: &[(u64, &str)] = &[
        (22, "epoll_pwait"),
        (63, "read"),
        (65, "readv"),
        (67, "pread64"),
        (72, "pselect6"),
        (73, "ppoll"),
        (98, "futex"),
        (101, "nanosleep"),
        (115, "clock_nanosleep"),
        (202, "accept"),
        (203, "connect"),
        (206, "sendto"),
        (207, "recvfrom"),
        (212, "recvmsg"),
        (242, "accept4"),
        (260, "wait4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const NAMES: &[(u64, &str)] = &[];
    NAMES.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_system_call() {
        // A psycopg query waiting in poll(fds, 1, -1) (kernel 6.18, x86_64).
        let (nr, args) =
            parse_syscall("7 0x7ffd5e3c1a50 0x1 0xffffffff 0x0 0x0 0x0 0x7ffd5e3c1a18 0x7f3\n")
                .expect("parse");
        assert_eq!((nr, args[1]), (7, 1));
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffd 0x7f3\n"), None);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(syscall_name(7), Some("poll"));
            assert_eq!(syscall_name(45), Some("recvfrom"));
            assert_eq!(syscall_name(230), Some("clock_nanosleep"));
        }
        assert_eq!(syscall_name(99_999), None);
    }
}
