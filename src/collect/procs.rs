//! Socket owners: one walk of `/proc/*/fd`, see proc(5).
//!
//! Each `/proc/PID/fd/N` is a symlink whose target reads `socket:[INODE]` for
//! a socket. Every pid holding a wanted inode is kept (forked workers share
//! listening and accepted sockets). Plain `read_dir` + `read_link`: procfs's
//! per-fd API makes four calls where one readlink suffices.
//!
//! A process that exits during the walk, or whose fds cannot be read (not
//! root), is counted, never fatal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::model::Process;

/// Which processes to look at (`--pid`, `--process`); empty means all.
#[derive(Debug, Default)]
pub struct Select<'a> {
    pub pids: &'a [u32],
    pub names: &'a [String],
}

#[derive(Debug, Default)]
pub struct Walk {
    pub owners: HashMap<u64, Vec<u32>>,
    pub processes: BTreeMap<u32, Process>,
    pub vanished: u32,
    pub unreadable: u32,
    /// Process directories found under the proc root: 0 means /proc is not
    /// mounted or shows no process.
    pub seen: u32,
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

/// Whether a process matches `--process NAME`: its comm is NAME, or one of
/// its command-line words, directory stripped, is NAME.
pub fn name_matches(name: &str, comm: &[u8], cmdline_raw: &[u8]) -> bool {
    let name = name.as_bytes();
    comm == name
        || cmdline_raw
            .split(|&b| b == 0 || b == b' ')
            .any(|w| w.rsplit(|&b| b == b'/').next() == Some(name))
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

/// Walks `proc_root` (normally `/proc`) once and maps every inode in
/// `wanted` to the pids holding it.
pub fn walk(proc_root: &Path, wanted: &HashSet<u64>, select: &Select) -> Walk {
    let mut w = Walk::default();
    if wanted.is_empty() {
        return w;
    }
    let Ok(entries) = fs::read_dir(proc_root) else {
        w.unreadable += 1;
        return w;
    };
    for entry in entries.flatten() {
        let Some(pid) = pid_of(&entry.file_name()) else {
            continue;
        };
        w.seen += 1;
        if !select.pids.is_empty() && !select.pids.contains(&pid) {
            continue;
        }
        let dir = entry.path();
        let mut comm = None;
        if !select.names.is_empty() {
            let c = fs::read(dir.join("comm"))
                .map(trim_newline)
                .unwrap_or_default();
            let cmd = fs::read(dir.join("cmdline")).unwrap_or_default();
            if !select.names.iter().any(|n| name_matches(n, &c, &cmd)) {
                continue;
            }
            comm = Some(c);
        }
        let fd_dir = dir.join("fd");
        let fds = match fs::read_dir(&fd_dir) {
            Ok(fds) => fds,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                w.vanished += 1;
                continue;
            }
            Err(_) => {
                w.unreadable += 1;
                continue;
            }
        };
        let mut fds_open = 0u32;
        let mut owns = false;
        let mut denied = false;
        for fd in fds.flatten() {
            fds_open += 1;
            let target = match fs::read_link(fd.path()) {
                Ok(t) => t,
                // A fd closed between readdir and readlink is simply gone.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                // A security module may deny the link even to root.
                Err(_) => {
                    denied = true;
                    continue;
                }
            };
            if let Some(inode) = socket_inode(target.as_os_str().as_bytes())
                && wanted.contains(&inode)
            {
                let pids = w.owners.entry(inode).or_default();
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
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

    #[test]
    fn process_name_match() {
        let cmd = b"/usr/bin/python3\0-m\0uvicorn\0app:app\0";
        assert!(name_matches("uvicorn", b"python3", cmd));
        assert!(name_matches("python3", b"python3", cmd));
        assert!(!name_matches("uvi", b"python3", cmd));
        assert!(name_matches("gunicorn", b"gunicorn", b""));
    }
}
