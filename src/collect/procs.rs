//! Socket owners: one walk of `/proc/*/fd`, see proc(5).
//!
//! Each `/proc/PID/fd/N` is a symlink whose target reads `socket:[INODE]` for
//! a socket. Every pid holding a wanted inode is kept (forked workers share
//! listening and accepted sockets). One `getdents` per process and one
//! `readlinkat` per fd, relative to the open fd directory: procfs's per-fd
//! API makes four calls where one suffices, and a full path costs a lookup
//! per component.
//!
//! A process that exits during the walk, or whose fds cannot be read (not
//! root), is counted, never fatal.

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr};
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::model::{InodeMap, Process, name_matches};

/// Which processes to look at (`--pid`, `--process`); empty means all.
#[derive(Debug, Default)]
pub struct Select<'a> {
    pub pids: &'a [u32],
    pub names: &'a [String],
}

#[derive(Debug, Default)]
pub struct Walk {
    /// (index of the socket, pid holding it), one per fd found.
    pub hits: Vec<(u32, u32)>,
    pub processes: BTreeMap<u32, Process>,
    pub vanished: u32,
    pub unreadable: u32,
    /// Process directories found under the proc root: 0 means /proc is not
    /// mounted or shows no process.
    pub seen: u32,
}

impl Walk {
    fn merge(&mut self, other: Walk) {
        self.hits.extend(other.hits);
        self.processes.extend(other.processes);
        self.vanished += other.vanished;
        self.unreadable += other.unreadable;
    }
}

/// The inode of a `socket:[N]` link target.
pub fn socket_inode(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The soft `Max open files` limit from `/proc/PID/limits`: `Some(None)`
/// when unlimited, `None` when the line is missing or malformed.
pub fn nofile_soft_limit(limits: &str) -> Option<Option<u64>> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// The real uid from `/proc/PID/status`.
pub fn status_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line[4..].split_ascii_whitespace().next()?.parse().ok()
}

/// `/proc/PID/cmdline` with the NUL separators turned into spaces.
pub fn cmdline_text(raw: &[u8]) -> Vec<u8> {
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(raw);
    trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect()
}

fn trim_newline(mut v: Vec<u8>) -> Vec<u8> {
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    v
}

fn read_details(dir: &Path, pid: u32, fds_open: u32, comm: Option<Vec<u8>>) -> Process {
    let comm = comm
        .or_else(|| fs::read(dir.join("comm")).ok())
        .map(trim_newline)
        .unwrap_or_default();
    let cmdline = fs::read(dir.join("cmdline"))
        .map(|c| cmdline_text(&c))
        .unwrap_or_default();
    let uid = fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|s| status_uid(&s));
    let fd_limit = fs::read_to_string(dir.join("limits"))
        .ok()
        .and_then(|s| nofile_soft_limit(&s))
        .flatten();
    Process {
        pid,
        comm,
        cmdline,
        uid,
        fds_open,
        fd_limit,
    }
}

/// `readlinkat(2)` into `buf`, without the `lstat` that sizing a buffer
/// would cost: a target longer than `buf` comes back cut, which is fine for
/// telling `socket:[N]` apart.
fn readlink_at<'b>(dir: RawFd, name: &CStr, buf: &'b mut [u8; 64]) -> std::io::Result<&'b [u8]> {
    // SAFETY: `dir` is an open directory, `name` is NUL-terminated, and the
    // kernel writes at most `buf.len()` bytes into `buf`.
    let n =
        unsafe { nix::libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) => Ok(&buf[..n.min(buf.len())]),
        Err(_) => Err(std::io::Error::last_os_error()),
    }
}

/// Looks at one process: its fds, and its details when it holds a wanted
/// socket.
fn walk_one(w: &mut Walk, proc_root: &Path, pid: u32, wanted: &InodeMap<u32>, select: &Select) {
    let dir = proc_root.join(pid.to_string());
    let mut comm = None;
    if !select.names.is_empty() {
        let c = fs::read(dir.join("comm"))
            .map(trim_newline)
            .unwrap_or_default();
        let cmd = fs::read(dir.join("cmdline")).unwrap_or_default();
        if !select.names.iter().any(|n| name_matches(n, &c, &cmd)) {
            return;
        }
        comm = Some(c);
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fds = match Dir::open(&dir.join("fd"), flags, Mode::empty()) {
        Ok(d) => d,
        Err(Errno::ENOENT | Errno::ESRCH) => {
            w.vanished += 1;
            return;
        }
        Err(_) => {
            w.unreadable += 1;
            return;
        }
    };
    let dirfd = fds.as_raw_fd();
    let mut buf = [0u8; 64];
    let mut fds_open = 0u32;
    let mut owns = false;
    let mut denied = false;
    for entry in fds.iter() {
        // An error mid-listing: the process is exiting.
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        fds_open += 1;
        let target = match readlink_at(dirfd, name, &mut buf) {
            Ok(t) => t,
            // A fd closed between readdir and readlink is simply gone.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            // A security module may deny the link even to root.
            Err(_) => {
                denied = true;
                continue;
            }
        };
        if let Some(index) = socket_inode(target).and_then(|i| wanted.get(&i)) {
            w.hits.push((*index, pid));
            owns = true;
        }
    }
    if denied {
        w.unreadable += 1;
    }
    if owns {
        w.processes
            .insert(pid, read_details(&dir, pid, fds_open, comm));
    }
}

/// Walks `proc_root` (normally `/proc`) once and finds the pids holding
/// every inode in `wanted` (inode → index of the socket). The processes are shared out over the
/// cores: the kernel's work per fd (the readlink) dominates and runs in
/// parallel.
pub fn walk(proc_root: &Path, wanted: &InodeMap<u32>, select: &Select) -> Walk {
    let mut w = Walk::default();
    if wanted.is_empty() {
        return w;
    }
    let Ok(entries) = fs::read_dir(proc_root) else {
        w.unreadable += 1;
        return w;
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| pid_of(&e.file_name()))
        .collect();
    w.seen = pids.len() as u32;
    if !select.pids.is_empty() {
        pids.retain(|p| select.pids.contains(p));
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(pids.len() / 16 + 1);
    if threads <= 1 {
        for &pid in &pids {
            walk_one(&mut w, proc_root, pid, wanted, select);
        }
        return w;
    }
    // Interleaved, so that the processes with many fds (often numbered
    // close together) are spread over the threads.
    let parts: Vec<Walk> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pids = &pids;
                scope.spawn(move || {
                    let mut part = Walk::default();
                    for &pid in pids.iter().skip(t).step_by(threads) {
                        walk_one(&mut part, proc_root, pid, wanted, select);
                    }
                    part
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let seen = w.seen;
    for part in parts {
        w.merge(part);
    }
    w.seen = seen;
    w
}

fn pid_of(name: &OsStr) -> Option<u32> {
    let b = name.as_bytes();
    if b.first().is_some_and(u8::is_ascii_digit) {
        std::str::from_utf8(b).ok()?.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[123456]"), Some(123456));
        assert_eq!(socket_inode(b"pipe:[123456]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn limits_file() {
        // /proc/self/limits, Linux 6.18.
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 20000                files     \n";
        assert_eq!(nofile_soft_limit(limits), Some(Some(1024)));
        let unl =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(nofile_soft_limit(unl), Some(None));
        assert_eq!(nofile_soft_limit("garbage"), None);
        assert_eq!(nofile_soft_limit("Max open files   x"), None);
    }

    #[test]
    fn status_and_cmdline() {
        assert_eq!(
            status_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"),
            Some(1000)
        );
        assert_eq!(status_uid("Name:\tx\n"), None);
        assert_eq!(
            cmdline_text(b"python3\0-m\0uvicorn\0"),
            b"python3 -m uvicorn"
        );
        assert_eq!(cmdline_text(b""), b"");
    }
}
