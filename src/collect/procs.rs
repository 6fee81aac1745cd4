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
//! root), is counted, never fatal. The samples of a watch share a
//! [`Memory`], so that each reads only the fd tables that changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CStr, OsStr};
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fstat, stat};

use crate::model::{InodeMap, Process, name_matches};

/// Which processes to look at (`--pid`, `--process`); empty means all.
#[derive(Debug, Default)]
pub struct Select<'a> {
    pub pids: &'a [u32],
    pub names: &'a [String],
}

impl Select<'_> {
    /// Whether the process at `dir` has one of the `--process` names:
    /// `None` when it has not; else its comm where it was read for that
    /// (`Some(None)`: no name asked, nothing read).
    fn by_name(&self, dir: &Path) -> Option<Option<Vec<u8>>> {
        if self.names.is_empty() {
            return Some(None);
        }
        let comm = fs::read(dir.join("comm"))
            .map(trim_newline)
            .unwrap_or_default();
        let cmd = fs::read(dir.join("cmdline")).unwrap_or_default();
        self.names
            .iter()
            .any(|n| name_matches(n, &comm, &cmd))
            .then_some(Some(comm))
    }
}

#[derive(Debug, Default)]
pub struct Walk {
    /// (index of the socket, pid holding it), one per fd found: the /proc
    /// walk's (the kernel's is asked through [`KernelOwners`]).
    pub hits: Vec<(u32, u32)>,
    pub processes: BTreeMap<u32, Process>,
    pub vanished: u32,
    pub unreadable: u32,
    /// Processes not read because zombiescan itself ran out of file
    /// descriptors (EMFILE, ENFILE): not the processes' doing.
    pub out_of_fds: u32,
    /// Process directories found under the proc root: 0 means /proc is not
    /// mounted or shows no process.
    pub seen: u32,
    /// What this walk learnt of each process read (`None`: unchanged, as
    /// remembered); a process not in it is forgotten.
    known: Vec<(u32, Option<Known>)>,
    /// The hits came from the kernel's walk (a full walk of a watch's).
    pub from_kernel: bool,
}

impl Walk {
    fn merge(&mut self, other: Walk) {
        self.hits.extend(other.hits);
        self.processes.extend(other.processes);
        self.vanished += other.vanished;
        self.unreadable += other.unreadable;
        self.out_of_fds += other.out_of_fds;
        self.known.extend(other.known);
    }
}

/// How often a watch reads every fd again, whatever it remembers.
pub const FULL_WALK_EVERY: Duration = Duration::from_secs(300);

/// What the walks of a watch remember between samples, so that the next
/// walk reads only what changed: a process whose fd directory has the same
/// inode (the same process) and the same size (Linux 6.2 and later: its
/// number of open fds) as at the last walk, and whose sockets are all still
/// in the table, is not listed again; in a process that is, an fd that held
/// a socket still in the table, or no socket at all, is not read again.
///
/// What this can miss, a fd that now holds something else while the socket
/// it held lives on in another process, is caught by the full walk every
/// [`FULL_WALK_EVERY`] (the first one too), which the kernel's walk does
/// where it may be used (see `super::bpf`): every socket descriptor in one
/// pass, no link read. A socket no process is found holding sends the walk
/// back over every fd that held no live socket.
#[derive(Debug, Default)]
pub struct Memory {
    procs: HashMap<u32, Known>,
    last_full: Option<Instant>,
    /// Wanted sockets that no process held at the last walk (their owners
    /// are unreadable, or they were closing): not a reason to look again.
    unowned: InodeMap<()>,
    /// The kernel's walk, loaded at the first full walk where it may be
    /// used (asked again at each full walk until it is), which then does
    /// every full walk.
    kernel: Option<super::bpf::Loaded>,
}

/// One process's fd table at the last walk.
#[derive(Debug)]
struct Known {
    dir_ino: u64,
    /// The size of the fd directory, taken before it was listed; `None` (a
    /// kernel that does not count) means list it again next time.
    count: Option<u64>,
    /// (fd, socket inode), in fd order; inode 0 for anything that was not
    /// a wanted socket.
    fds: Vec<(u32, u64)>,
    /// Some link could not be read, even as root.
    denied: bool,
}

impl Memory {
    /// A memory whose full walks are the kernel's `loaded`, whatever the
    /// host (a test's host has few descriptors).
    #[cfg(test)]
    pub(super) fn with_kernel(loaded: super::bpf::Loaded) -> Memory {
        Memory {
            kernel: Some(loaded),
            ..Memory::default()
        }
    }

    /// The sockets (fd, inode) remembered of `pid`.
    #[cfg(test)]
    pub(super) fn sockets_of(&self, pid: u32) -> Vec<(u32, u64)> {
        self.procs.get(&pid).map_or(Vec::new(), |k| {
            k.fds.iter().copied().filter(|&(_, i)| i != 0).collect()
        })
    }
}

/// How much of a [`Memory`] a walk may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// Read every fd of every process.
    Nothing,
    /// List every process; do not read an fd that held a live socket.
    Sockets,
    /// Skip an unchanged process; do not read an fd that held a live socket
    /// or no wanted socket.
    All,
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

/// The parent's pid from `/proc/PID/status`; none for a process the kernel
/// started (0).
pub fn status_ppid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("PPid:"))?;
    line[5..].trim().parse().ok().filter(|&p| p != 0)
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
    let status = fs::read_to_string(dir.join("status")).ok();
    let uid = status.as_deref().and_then(status_uid);
    let ppid = status.as_deref().and_then(status_ppid);
    let parent_cmdline = match ppid {
        Some(pp) if Process::forked_worker(&cmdline) => {
            let parent = dir.parent().unwrap_or(dir).join(pp.to_string());
            fs::read(parent.join("cmdline"))
                .ok()
                .map(|c| cmdline_text(&c))
        }
        _ => None,
    };
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
        ppid,
        parent_cmdline,
        container: None,
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

/// Where a process is in the fd walk: its `/proc/PID` and what is asked.
struct Visit<'a> {
    proc_root: &'a Path,
    wanted: &'a InodeMap<u32>,
    select: &'a Select<'a>,
    reuse: Reuse,
    /// Keep what each fd held, for the next walk of a watch.
    remember: bool,
}

/// Looks at one process: its fds, and its details when it holds a wanted
/// socket. `known` is what the last walk saw of it.
fn walk_one(w: &mut Walk, v: &Visit, pid: u32, known: Option<&Known>) {
    let dir = v.proc_root.join(pid.to_string());
    let Some(comm) = v.select.by_name(&dir) else {
        return;
    };
    let fd_dir = dir.join("fd");
    if v.reuse == Reuse::All
        && let Some(k) = known
    {
        match stat(&fd_dir) {
            Ok(st) if st.st_ino == k.dir_ino && k.count == u64::try_from(st.st_size).ok() => {
                // Its sockets as remembered, if all are still in the table.
                let before = w.hits.len();
                let alive = k.fds.iter().all(|&(_, i)| {
                    i == 0
                        || v.wanted.get(&i).is_some_and(|&index| {
                            w.hits.push((index, pid));
                            true
                        })
                });
                if alive {
                    w.unreadable += u32::from(k.denied);
                    w.known.push((pid, None));
                    if w.hits.len() > before {
                        let open = fds_open(k.count, || k.fds.len() as u32);
                        w.processes.insert(pid, read_details(&dir, pid, open, comm));
                    }
                    return;
                }
                w.hits.truncate(before);
            }
            Err(Errno::ENOENT | Errno::ESRCH) => {
                w.vanished += 1;
                return;
            }
            _ => {}
        }
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fds = match Dir::open(&fd_dir, flags, Mode::empty()) {
        Ok(d) => d,
        Err(Errno::ENOENT | Errno::ESRCH) => {
            w.vanished += 1;
            return;
        }
        Err(Errno::EMFILE | Errno::ENFILE) => {
            w.out_of_fds += 1;
            return;
        }
        Err(_) => {
            w.unreadable += 1;
            return;
        }
    };
    let dirfd = fds.as_raw_fd();
    // Before the listing: a table that changes meanwhile then differs next
    // time, and is listed again.
    let size = fstat(&fds).ok();
    let mut buf = [0u8; 64];
    let mut seen = Vec::new();
    let mut open = 0u32;
    let mut owns = false;
    // A link denied before, not read again.
    let mut denied = v.reuse == Reuse::All && known.is_some_and(|k| k.denied);
    for entry in fds.iter() {
        // An error mid-listing: the process is exiting.
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        let Some(fd) = std::str::from_utf8(name.to_bytes())
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let before = known.and_then(|k| {
            k.fds
                .binary_search_by_key(&fd, |(f, _)| *f)
                .ok()
                .map(|at| k.fds[at].1)
        });
        let inode = match (v.reuse, before) {
            (Reuse::All, Some(0)) => 0,
            (Reuse::All | Reuse::Sockets, Some(i)) if i != 0 && v.wanted.contains_key(&i) => i,
            _ => match readlink_at(dirfd, name, &mut buf) {
                Ok(target) => socket_inode(target)
                    .filter(|i| v.wanted.contains_key(i))
                    .unwrap_or(0),
                // A fd closed between readdir and readlink is simply gone.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                // A security module may deny the link even to root.
                Err(_) => {
                    denied = true;
                    0
                }
            },
        };
        if let Some(index) = v.wanted.get(&inode) {
            w.hits.push((*index, pid));
            owns = true;
        }
        open += 1;
        if v.remember {
            seen.push((fd, inode));
        }
    }
    if denied {
        w.unreadable += 1;
    }
    let table = size.and_then(|st| u64::try_from(st.st_size).ok());
    if owns {
        let counted = fds_open(table, || open);
        w.processes
            .insert(pid, read_details(&dir, pid, counted, comm));
    }
    // A size of 0 with fds listed: a kernel older than 6.2. (A size one
    // more than listed is a server blocked in accept(2): the fd is taken
    // but holds nothing yet.)
    let count = table.filter(|&n| n > 0 || open == 0);
    // Without its size the next walk cannot tell it unchanged: forgotten.
    if let Some(st) = size.filter(|_| v.remember) {
        // Listed in fd order, but a binary search needs it for sure.
        seen.sort_unstable_by_key(|(fd, _)| *fd);
        let known = Known {
            dir_ino: st.st_ino,
            count,
            fds: seen,
            denied,
        };
        w.known.push((pid, Some(known)));
    }
}

/// Walks `proc_root` (normally `/proc`) once and finds the pids holding
/// every inode in `wanted` (inode → index of the socket). A watch passes
/// its `memory`, which the walk uses and updates; a single scan, `None`.
pub fn walk(
    proc_root: &Path,
    wanted: &InodeMap<u32>,
    select: &Select,
    memory: Option<&mut Memory>,
) -> Walk {
    if wanted.is_empty() {
        return Walk::default();
    }
    let Some(memory) = memory else {
        return walk_pass(proc_root, wanted, select, None, Reuse::Nothing);
    };
    let full = memory
        .last_full
        .is_none_or(|t| t.elapsed() >= FULL_WALK_EVERY);
    if full && let Some(w) = kernel_pass(proc_root, wanted, select, memory) {
        memory.last_full = Some(Instant::now());
        memory.unowned = unowned(&w, wanted);
        return w;
    }
    let reuse = if full { Reuse::Nothing } else { Reuse::All };
    let mut w = walk_pass(proc_root, wanted, select, Some(memory), reuse);
    let mut unowned = unowned(&w, wanted);
    if reuse == Reuse::All && unowned.keys().any(|i| !memory.unowned.contains_key(i)) {
        w = walk_pass(proc_root, wanted, select, Some(memory), Reuse::Sockets);
        unowned = self::unowned(&w, wanted);
    }
    if full {
        memory.last_full = Some(Instant::now());
    }
    memory.unowned = unowned;
    w
}

/// A watch's full walk by the kernel's, where it may be used: every
/// socket descriptor of every process, in one pass of the kernel's, with
/// no link read; what it learns of each process holding sockets is
/// remembered as a walk of /proc would remember it. Its other descriptors
/// are not known: the next walk reads them if its table changed. `None`
/// where the kernel's walk may not be used, or failed.
fn kernel_pass(
    proc_root: &Path,
    wanted: &InodeMap<u32>,
    select: &Select,
    memory: &mut Memory,
) -> Option<Walk> {
    // Asked again at each full walk until it may be used: a host that was
    // quiet when the watch began may be busy now.
    if memory.kernel.is_none() {
        memory.kernel = super::bpf::Loaded::load().ok();
    }
    let loaded = memory.kernel.as_mut()?;
    // Each fd table's identity and size, taken before the kernel's walk,
    // as the /proc walk takes them before listing: a table that changes
    // meanwhile then differs at the next walk, which reads it again.
    let pids: Vec<u32> = fs::read_dir(proc_root)
        .ok()?
        .flatten()
        .filter_map(|e| pid_of(&e.file_name()))
        .collect();
    let before: HashMap<u32, (u64, Option<u64>)> = pids
        .iter()
        .filter_map(|&pid| {
            let st = stat(&proc_root.join(pid.to_string()).join("fd")).ok()?;
            Some((pid, (st.st_ino, u64::try_from(st.st_size).ok())))
        })
        .collect();
    let records = loaded.run_fds().ok()?;
    let mut w = Walk {
        from_kernel: true,
        seen: pids.len() as u32,
        ..Walk::default()
    };
    let mut procs = HashMap::new();
    for run in records.chunk_by(|a, b| a.pid == b.pid) {
        let pid = run[0].pid;
        if !select.pids.is_empty() && !select.pids.contains(&pid) {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        let Some(comm) = select.by_name(&dir) else {
            continue;
        };
        // Gone since the kernel's walk: it holds nothing.
        let fd_dir = dir.join("fd");
        let Ok(st) = stat(&fd_dir) else {
            w.vanished += 1;
            continue;
        };
        // Started since the sizes were taken: read again next time.
        let (dir_ino, table) = before.get(&pid).copied().unwrap_or((st.st_ino, None));
        let fds: Vec<(u32, u64)> = run
            .iter()
            .map(|r| {
                let ino = u64::from(r.ino);
                (r.fd, if wanted.contains_key(&ino) { ino } else { 0 })
            })
            .collect();
        let held = w.hits.len();
        w.hits.extend(
            fds.iter()
                .filter_map(|(_, ino)| Some((*wanted.get(ino)?, pid))),
        );
        if w.hits.len() > held {
            let now = u64::try_from(st.st_size).ok();
            let open = fds_open(now, || {
                fs::read_dir(&fd_dir).map_or(0, |d| d.count() as u32)
            });
            w.processes.insert(pid, read_details(&dir, pid, open, comm));
        }
        // Without its size (a kernel before 6.2, or a process started
        // since) the next walk cannot tell it unchanged: not remembered.
        if let Some(count) = table.filter(|&n| n > 0) {
            let known = Known {
                dir_ino,
                count: Some(count),
                fds,
                denied: false,
            };
            procs.insert(pid, known);
        }
    }
    memory.procs = procs;
    Some(w)
}

/// The wanted inodes that no process of the walk holds.
fn unowned(w: &Walk, wanted: &InodeMap<u32>) -> InodeMap<()> {
    let mut held = vec![false; wanted.values().max().map_or(0, |&m| m as usize + 1)];
    for &(index, _) in &w.hits {
        held[index as usize] = true;
    }
    wanted
        .iter()
        .filter(|(_, index)| !held[**index as usize])
        .map(|(i, _)| (*i, ()))
        .collect()
}

/// One pass over the processes. The processes are shared out over the
/// cores: the kernel's work per fd (the readlink) dominates and runs in
/// parallel.
fn walk_pass(
    proc_root: &Path,
    wanted: &InodeMap<u32>,
    select: &Select,
    memory: Option<&mut Memory>,
    reuse: Reuse,
) -> Walk {
    let mut w = Walk::default();
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
    let v = Visit {
        proc_root,
        wanted,
        select,
        reuse,
        remember: memory.is_some(),
    };
    let none = HashMap::new();
    let known = memory.as_deref().map_or(&none, |m| &m.procs);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(pids.len() / 16 + 1);
    if threads <= 1 {
        for &pid in &pids {
            walk_one(&mut w, &v, pid, known.get(&pid));
        }
    } else {
        // Interleaved, so that the processes with many fds (often numbered
        // close together) are spread over the threads.
        let parts: Vec<Walk> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (pids, v) = (&pids, &v);
                    scope.spawn(move || {
                        let mut part = Walk::default();
                        for &pid in pids.iter().skip(t).step_by(threads) {
                            walk_one(&mut part, v, pid, known.get(&pid));
                        }
                        part
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for part in parts {
            w.merge(part);
        }
    }
    // What was learnt replaces what was known; a process gone is forgotten.
    if let Some(memory) = memory {
        let mut old = std::mem::take(&mut memory.procs);
        memory.procs = std::mem::take(&mut w.known)
            .into_iter()
            .filter_map(|(pid, k)| Some((pid, k.or_else(|| old.remove(&pid))?)))
            .collect();
    }
    w
}

/// The owners of the sockets whose inodes `inodes` lists, from the
/// kernel's walk of every fd table (`super::bpf`), run while the sockets
/// were read: its `records`, and for the sockets they do not hold (opened
/// after the walk passed their process) a second walk with the iterator
/// `loaded`; then the details of the owners only, from /proc. The same
/// owners as [`walk`] would find, asked of the returned [`KernelOwners`]
/// socket by socket: no list of hits is built (at 200,000 sockets one
/// costs 1.6 MB), nor any index of the sockets (4.5 MB).
pub fn walk_kernel(
    proc_root: &Path,
    inodes: impl Iterator<Item = u64>,
    select: &Select,
    (mut loaded, mut records): (super::bpf::Loaded, Vec<super::bpf::Record>),
) -> (Walk, KernelOwners) {
    let mut directory = Directory::new(&records);
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    let mut missed: BTreeSet<u32> = BTreeSet::new();
    for ino in inodes.filter(|&i| i != 0) {
        // No record has an inode past 32 bits (see `Record::ino`).
        let Ok(ino) = u32::try_from(ino) else {
            continue;
        };
        let mut any = false;
        for r in held(&records, &directory, ino) {
            any = true;
            if select.pids.is_empty() || select.pids.contains(&r.pid) {
                pids.insert(r.pid);
            }
        }
        if !any {
            missed.insert(ino);
        }
    }
    if !missed.is_empty()
        && let Ok(again) = loaded.run_where(|r| missed.contains(&r.ino))
    {
        for r in &again {
            if select.pids.is_empty() || select.pids.contains(&r.pid) {
                pids.insert(r.pid);
            }
        }
        records.extend(again);
        records.sort_unstable_by_key(|r| (r.ino, r.pid));
        directory = Directory::new(&records);
    }
    let walk = owners(proc_root, select, pids);
    let owners = KernelOwners {
        owners: walk.processes.keys().copied().collect(),
        records,
        directory,
    };
    (walk, owners)
}

/// Who holds each socket, by the kernel's records: of the processes
/// selected and still there when their details were read.
pub struct KernelOwners {
    records: Vec<super::bpf::Record>,
    directory: Directory,
    owners: BTreeSet<u32>,
}

impl KernelOwners {
    /// The processes holding the socket of inode `ino`, each once.
    pub fn of(&self, ino: u64) -> impl Iterator<Item = u32> + '_ {
        let ino = u32::try_from(ino).ok().filter(|&i| i != 0);
        let records = match ino {
            Some(i) => held(&self.records, &self.directory, i),
            None => &[],
        };
        let mut last = None;
        records
            .iter()
            .map(|r| r.pid)
            .filter(move |p| self.owners.contains(p) && last.replace(*p) != Some(*p))
    }
}

/// The records of inode `ino` among `records` (sorted by inode).
fn held<'r>(
    records: &'r [super::bpf::Record],
    directory: &Directory,
    ino: u32,
) -> &'r [super::bpf::Record] {
    let near = &records[directory.range(ino)];
    let from = near.partition_point(|r| r.ino < ino);
    let to = from + near[from..].partition_point(|r| r.ino == ino);
    &near[from..to]
}

/// Where each range of inodes begins among records sorted by inode: 2^16
/// ranges over the records' span (256 KiB), so that finding an inode reads
/// a few records near it, not the eighteen steps of a binary search over
/// 200,000 (each a cache miss).
struct Directory {
    min: u32,
    shift: u32,
    /// Range k's records are `starts[k]..starts[k + 1]`.
    starts: Vec<u32>,
}

impl Directory {
    fn new(records: &[super::bpf::Record]) -> Directory {
        let (min, max) = match (records.first(), records.last()) {
            (Some(a), Some(b)) => (a.ino, b.ino),
            _ => (0, 0),
        };
        let span = max - min;
        let shift = (u32::BITS - span.leading_zeros()).saturating_sub(16);
        let mut starts = vec![0u32; (span >> shift) as usize + 2];
        for r in records {
            starts[((r.ino - min) >> shift) as usize + 1] += 1;
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        Directory { min, shift, starts }
    }

    /// The records whose range `ino` falls in.
    fn range(&self, ino: u32) -> std::ops::Range<usize> {
        let Some(k) = ino
            .checked_sub(self.min)
            .map(|d| (d >> self.shift) as usize)
            .filter(|&k| k < self.starts.len() - 1)
        else {
            return 0..0;
        };
        self.starts[k] as usize..self.starts[k + 1] as usize
    }
}

/// The details of the processes `pids`, from /proc: those still there
/// and matching the `--process` names.
fn owners(proc_root: &Path, select: &Select, pids: BTreeSet<u32>) -> Walk {
    let mut w = Walk {
        seen: fs::read_dir(proc_root).map_or(0, |d| {
            d.flatten()
                .filter(|e| pid_of(&e.file_name()).is_some())
                .count() as u32
        }),
        ..Walk::default()
    };
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let Some(comm) = select.by_name(&dir) else {
            continue;
        };
        // Gone since the kernel's walk: as the /proc walk would not have
        // seen it, it holds nothing. Its fd directory is listed only where
        // the size says nothing: listing thousands of descriptors would
        // cost what the kernel's walk saved.
        let fd_dir = dir.join("fd");
        let Ok(meta) = fs::metadata(&fd_dir) else {
            w.vanished += 1;
            continue;
        };
        let open = fds_open(Some(meta.size()), || {
            fs::read_dir(&fd_dir).map_or(0, |d| d.count() as u32)
        });
        w.processes.insert(pid, read_details(&dir, pid, open, comm));
    }
    w
}

/// A process's open descriptors: the size of its fd directory (Linux 6.2
/// and later: the fd table's own count, what RLIMIT_NOFILE counts, a
/// descriptor taken by a thread blocked in accept(2) included), else
/// those `listed`.
fn fds_open(size: Option<u64>, listed: impl FnOnce() -> u32) -> u32 {
    size.filter(|&n| n > 0)
        .map_or_else(listed, |n| u32::try_from(n).unwrap_or(u32::MAX))
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
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A directory laid out as /proc: PID/fd/N symlinks whose targets read
    /// like the kernel's, removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(name: &str) -> FakeProc {
            let dir = std::env::temp_dir().join(format!("zs-proc-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            FakeProc(dir)
        }

        fn process(&self, pid: u32, comm: &str) {
            let d = self.0.join(pid.to_string());
            fs::create_dir_all(d.join("fd")).unwrap();
            fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(d.join("cmdline"), format!("{comm}\0")).unwrap();
        }

        /// Points fd `fd` of `pid` at `target`, replacing what it held.
        fn fd(&self, pid: u32, fd: u32, target: &str) {
            let link = self.0.join(pid.to_string()).join("fd").join(fd.to_string());
            let _ = fs::remove_file(&link);
            symlink(target, link).unwrap();
        }

        fn close(&self, pid: u32, fd: u32) {
            fs::remove_file(self.0.join(pid.to_string()).join("fd").join(fd.to_string())).unwrap();
        }

        /// (inode, pid) of every hit, sorted, with `wanted` inodes 1..=n.
        fn owners(&self, inodes: &[u64], memory: &mut Memory) -> Vec<(u64, u32)> {
            let wanted: InodeMap<u32> = inodes
                .iter()
                .enumerate()
                .map(|(i, &ino)| (ino, i as u32))
                .collect();
            let w = walk(&self.0, &wanted, &Select::default(), Some(memory));
            let mut out: Vec<(u64, u32)> = w
                .hits
                .iter()
                .map(|&(index, pid)| (inodes[index as usize], pid))
                .collect();
            out.sort_unstable();
            out
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_remembered_walk_sees_what_changed() {
        let p = FakeProc::new("changes");
        p.process(100, "server");
        p.process(200, "client");
        p.fd(100, 0, "/dev/null");
        p.fd(100, 3, "socket:[1001]");
        p.fd(100, 4, "socket:[1002]");
        p.fd(200, 3, "socket:[1003]");
        p.fd(200, 4, "pipe:[77]");
        let mut memory = Memory::default();
        let live = [1001, 1002, 1003];
        let first = p.owners(&live, &mut memory);
        assert_eq!(first, [(1001, 100), (1002, 100), (1003, 200)]);
        assert!(memory.last_full.is_some());
        // Nothing changed: the same answer from what was remembered.
        assert_eq!(p.owners(&live, &mut memory), first);

        // A new socket in a new fd, and one in a new process.
        p.fd(200, 5, "socket:[1004]");
        p.process(300, "worker");
        p.fd(300, 7, "socket:[1001]");
        let live = [1001, 1002, 1003, 1004];
        assert_eq!(
            p.owners(&live, &mut memory),
            [
                (1001, 100),
                (1001, 300),
                (1002, 100),
                (1003, 200),
                (1004, 200)
            ]
        );

        // A socket in the fd that held /dev/null, the fd count unchanged:
        // no process is found holding it, so every fd is looked at again.
        p.fd(100, 0, "socket:[1005]");
        let live = [1001, 1002, 1003, 1004, 1005];
        assert_eq!(
            p.owners(&live, &mut memory),
            [
                (1001, 100),
                (1001, 300),
                (1002, 100),
                (1003, 200),
                (1004, 200),
                (1005, 100)
            ]
        );

        // A socket closed (gone from the table) and its fd reused.
        p.fd(200, 3, "socket:[1006]");
        let live = [1001, 1002, 1004, 1005, 1006];
        assert_eq!(
            p.owners(&live, &mut memory),
            [
                (1001, 100),
                (1001, 300),
                (1002, 100),
                (1004, 200),
                (1005, 100),
                (1006, 200)
            ]
        );

        // The last of a process's sockets closed and its fd reused, after
        // live ones: what was found of it before is not counted twice.
        p.fd(100, 4, "socket:[1007]");
        let live = [1001, 1004, 1005, 1006, 1007];
        assert_eq!(
            p.owners(&live, &mut memory),
            [
                (1001, 100),
                (1001, 300),
                (1004, 200),
                (1005, 100),
                (1006, 200),
                (1007, 100)
            ]
        );

        // A process gone is forgotten.
        fs::remove_dir_all(p.0.join("300")).unwrap();
        let w = p.owners(&live, &mut memory);
        assert!(w.iter().all(|&(_, pid)| pid != 300));
        assert!(!memory.procs.contains_key(&300));
    }

    #[test]
    fn what_a_remembered_walk_cannot_see_the_full_walk_corrects() {
        let p = FakeProc::new("stale");
        p.process(100, "master");
        p.process(200, "worker");
        p.fd(100, 3, "socket:[2001]");
        p.fd(100, 4, "/dev/null");
        p.fd(200, 3, "socket:[2001]");
        let mut memory = Memory::default();
        let live = [2001];
        assert_eq!(p.owners(&live, &mut memory), [(2001, 100), (2001, 200)]);
        // The master closes its copy and reopens the fd number on a file;
        // the socket lives on in the worker. Same count, socket alive:
        // nothing tells a remembered walk.
        p.close(100, 3);
        p.fd(100, 3, "/var/log/x");
        assert_eq!(p.owners(&live, &mut memory), [(2001, 100), (2001, 200)]);
        // The full walk, due every FULL_WALK_EVERY, reads every fd again.
        memory.last_full = Instant::now().checked_sub(FULL_WALK_EVERY);
        assert_eq!(p.owners(&live, &mut memory), [(2001, 200)]);
    }

    #[test]
    fn an_owner_that_cannot_be_found_does_not_send_every_walk_back() {
        let p = FakeProc::new("unowned");
        p.process(100, "server");
        p.fd(100, 3, "socket:[3001]");
        let mut memory = Memory::default();
        // 3002's owner is unreadable: unowned after the full walk, and
        // after each remembered walk, which does not fall back for it.
        let live = [3001, 3002];
        assert_eq!(p.owners(&live, &mut memory), [(3001, 100)]);
        assert!(memory.unowned.contains_key(&3002));
        p.fd(100, 4, "/dev/null");
        assert_eq!(p.owners(&live, &mut memory), [(3001, 100)]);
        assert_eq!(memory.unowned.len(), 1);
    }

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
        assert_eq!(status_ppid("Name:\tx\nPid:\t9\nPPid:\t4242\n"), Some(4242));
        assert_eq!(status_ppid("PPid:\t0\n"), None, "a kernel thread's");
        assert_eq!(
            cmdline_text(b"python3\0-m\0uvicorn\0"),
            b"python3 -m uvicorn"
        );
        assert_eq!(cmdline_text(b""), b"");
    }

    /// The kernel's records, sorted, give every holder of each socket
    /// (forked workers share one) once, of the owners found only; inode 0
    /// and one past 32 bits are no socket's.
    #[test]
    fn holders_among_the_kernels_records() {
        use super::super::bpf::Record;
        let r = |pid, ino| Record { pid, ino };
        let mut records = vec![r(20, 500), r(10, 500), r(20, 500), r(10, 700), r(30, 900)];
        records.sort_unstable_by_key(|r| (r.ino, r.pid));
        let k = KernelOwners {
            directory: Directory::new(&records),
            records,
            owners: BTreeSet::from([10, 20]),
        };
        let of = |ino| k.of(ino).collect::<Vec<u32>>();
        assert_eq!(
            of(500),
            vec![10, 20],
            "twice by pid 20 (a dup), listed once"
        );
        assert_eq!(of(700), vec![10]);
        assert!(of(900).is_empty(), "pid 30 is not an owner found");
        assert!(of(600).is_empty() && of(0).is_empty() && of(1 << 40).is_empty());
    }

    /// The directory finds every inode of records spread over a span far
    /// wider than its 2^16 ranges, and none outside it.
    #[test]
    fn the_directory_of_sorted_records() {
        use super::super::bpf::Record;
        let mut records: Vec<Record> = (0..50_000u32)
            .map(|i| Record {
                pid: i,
                ino: 1_000 + i * (i / 8) * 13,
            })
            .collect();
        records.sort_unstable_by_key(|r| r.ino);
        let d = Directory::new(&records);
        for r in records.iter().step_by(97).chain(records.last()) {
            let near = &records[d.range(r.ino)];
            assert!(near.iter().any(|n| n.ino == r.ino), "{}", r.ino);
        }
        assert_eq!(d.range(999), 0..0);
        assert!(records[d.range(u32::MAX)].is_empty());
        assert_eq!(Directory::new(&[]).range(5), 0..0);
        assert_eq!(Directory::new(&[]).range(u32::MAX), 0..0);
    }

    /// A process the kernel's walk saw and that exited before its details
    /// were read holds nothing, and is counted as vanished; one that a
    /// `--process` name does not match is left out.
    #[test]
    fn owners_of_the_kernels_records_that_exited_or_do_not_match() {
        let p = FakeProc::new("kernel-owners");
        p.process(100, "uvicorn");
        p.process(200, "nginx");
        let pids = BTreeSet::from([100, 200, 300]);
        let w = owners(&p.0, &Select::default(), pids.clone());
        assert_eq!(
            w.processes.keys().copied().collect::<Vec<_>>(),
            vec![100, 200]
        );
        assert_eq!(w.vanished, 1, "pid 300 exited");
        assert_eq!(w.seen, 2);
        assert_eq!(w.processes[&100].comm, b"uvicorn");
        let names = ["nginx".to_string()];
        let only = Select {
            pids: &[],
            names: &names,
        };
        let w = owners(&p.0, &only, pids);
        assert_eq!(w.processes.keys().copied().collect::<Vec<_>>(), vec![200]);
    }
}
