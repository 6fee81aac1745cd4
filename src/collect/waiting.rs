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

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use super::netlink;
use crate::model::{Blocked, Direction, Snapshot, TcpState, Waiting, direction};

/// Descriptors a process may wait on that are worth reading back.
const MAX_POLL_FDS: u64 = 8;

/// Adds to `snap.waiting` the outstanding requests of `pids`, read in the
/// snapshot's network namespace. Failures leave it as it was: this is a
/// hint, not the scan.
pub fn probe(snap: &mut Snapshot, pids: &[u32]) {
    if snap.source != crate::model::Source::Netlink || !snap.owners_walked || pids.is_empty() {
        return;
    }
    let enter = match (&snap.netns.enter, snap.netns.own) {
        (_, true) | (None, _) => None,
        (Some(arg), false) => match super::netns::resolve(arg) {
            Ok(p) => Some(p),
            Err(_) => return,
        },
    };
    let listening = snap.listening_ports();
    let ephemeral = snap.host.ephemeral_range();
    let proc = Path::new(super::PROC);
    let found = match enter {
        None => probe_here(&listening, ephemeral, pids, proc),
        Some(path) => {
            super::netns::run_in(&path, || Ok(probe_here(&listening, ephemeral, pids, proc)))
                .unwrap_or_default()
        }
    };
    snap.waiting.extend(found);
}

fn probe_here(
    listening: &BTreeSet<u16>,
    ephemeral: Option<(u16, u16)>,
    pids: &[u32],
    proc: &Path,
) -> Vec<Waiting> {
    let mut out = Vec::new();
    let mut inodes: HashMap<u64, (u32, u32)> = HashMap::new();
    for &pid in pids {
        for (fd, inode) in socket_fds(proc, pid) {
            inodes.insert(inode, (pid, fd));
        }
    }
    if inodes.is_empty() {
        return out;
    }
    let Ok(dump) = netlink::dump_sockets_where(TcpState::Established.mask_bit(), &[], |s| {
        inodes.contains_key(&s.inode) && direction(s, listening, ephemeral) == Direction::Outbound
    }) else {
        return out;
    };
    let mut threads: HashMap<u32, Vec<Blocked>> = HashMap::new();
    for s in dump.sockets {
        let Some(ti) = &s.tcp_info else { continue };
        let (Some(sent), Some(recv)) = (ti.last_data_sent(), ti.last_data_recv()) else {
            continue;
        };
        let Some(&(pid, fd)) = inodes.get(&s.inode) else {
            continue;
        };
        let blocked = threads
            .entry(pid)
            .or_insert_with(|| blocked_threads(proc, pid));
        let on_it = blocked.iter().find(|b| b.fds.contains(&fd));
        // A request outstanding: data sent after the last data received;
        // or a thread blocked on the socket (a reply begun and not ended,
        // as PostgreSQL's extended protocol answers a query's parse at
        // once and its rows when done).
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
